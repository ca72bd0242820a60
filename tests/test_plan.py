"""A network's plan: each layer's time x count, every strategy's total, and the per-layer choice
under a workspace budget (convbench.analysis.plan, `convbench plan`, the report's section)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from convbench.analysis.plan import make_plan
from convbench.cli import EXIT_OK, EXIT_USAGE, main
from convbench.run.runner import RunOptions, run
from convbench.run.suite import load_suite
from convbench.units import parse_bytes

MIB = 2**20


def _rows(*rows: tuple) -> pd.DataFrame:
    """(case, algo, status, time, measured workspace, modelled workspace) rows of one suite;
    auto ran winograd on conv1 and im2col on conv2."""
    ran = {("conv1", "auto"): "winograd", ("conv2", "auto"): "im2col"}
    return pd.DataFrame(
        [{"suite": "net", "case": c, "algo": a, "backend": "numpy", "status": s,
          "time_median_s": t, "peak_mem_bytes": m, "workspace_model_bytes": w,
          "ran_algo": ran.get((c, a), a)} for c, a, s, t, m, w in rows])


FRAME = _rows(
    ("conv1", "torch", "ok", 4.0, math.nan, math.nan),
    ("conv1", "winograd", "ok", 1.0, 100 * MIB, 90 * MIB),
    ("conv1", "im2col", "ok", 2.0, 10 * MIB, 30 * MIB),
    ("conv2", "torch", "ok", 1.0, math.nan, math.nan),
    ("conv2", "winograd", "unsupported", math.nan, math.nan, math.nan),
    ("conv2", "im2col", "ok", 3.0, 1 * MIB, math.nan),
    ("conv1", "auto", "ok", 0.9, 100 * MIB, 90 * MIB),
    ("conv2", "auto", "ok", 3.1, 1 * MIB, math.nan),
)
COUNTS = {"conv1": 3}  # conv2 occurs once


def test_each_strategy_totals_time_x_count() -> None:
    plan = make_plan(FRAME, COUNTS, "torch")
    totals = dict(zip(plan.strategies["strategy"], plan.strategies["total_s"], strict=True))
    assert totals["torch (reference)"] == pytest.approx(3 * 4.0 + 1.0)
    assert totals["winograd, torch elsewhere"] == pytest.approx(3 * 1.0 + 1.0)  # torch on conv2
    assert totals["im2col, torch elsewhere"] == pytest.approx(3 * 2.0 + 3.0)
    assert totals["auto"] == pytest.approx(3 * 0.9 + 3.1)
    # auto's rows time the algorithm it ran: a strategy, never a layer's choice
    assert totals["per-layer best"] == pytest.approx(3 * 1.0 + 1.0)
    covered = dict(zip(plan.strategies["strategy"], plan.strategies["covered"], strict=True))
    assert covered["winograd, torch elsewhere"] == 1 and covered["per-layer best"] == 2
    assert list(plan.layers["algo"]) == ["winograd", "torch"]


def test_a_budget_that_excludes_the_fastest_picks_the_next_and_says_so() -> None:
    plan = make_plan(FRAME, COUNTS, "torch", budget_bytes=64 * MIB)
    conv1, conv2 = plan.layers.itertuples()
    assert conv1.algo == "im2col" and conv1.total_s == pytest.approx(6.0)
    assert conv1.workspace_bytes == 30 * MIB  # the larger of measured and modelled
    assert "winograd 1 s passed over: workspace 100 MiB over the budget" in conv1.note
    # torch's workspace is unknown (its allocator is invisible): it cannot be held to a budget
    assert conv2.algo == "im2col" and "torch 1 s passed over: workspace unknown" in conv2.note
    assert plan.total_s == pytest.approx(9.0)
    small = make_plan(FRAME, COUNTS, "torch", budget_bytes=MIB // 2)
    assert small.unplanned == ["conv1", "conv2"]


def test_sizes_read_as_people_write_them() -> None:
    assert parse_bytes("64MiB") == 64 * MIB and parse_bytes("1.5 GiB") == 3 * 2**29
    assert parse_bytes("512k") == 512 * 1024 and parse_bytes("1MB") == 10**6
    with pytest.raises(ValueError, match=r"expected a size such as 64MiB.*got '64 parsecs'"):
        parse_bytes("64 parsecs")


def test_convbench_plan_prints_and_writes_the_plan(tmp_path: Path, capsys) -> None:
    suite = tmp_path / "net.toml"
    suite.write_text('[suite]\nnetwork = true\nalgorithms = ["direct", "im2col", "torch"]\n'
                     'budget_s = 0.01\nmin_repeats = 3\n\n'
                     '[[case]]\nname = "a"\ndescriptor = "n2c8h12k8r3p1"\ncount = 2\n\n'
                     '[[case]]\nname = "b"\ndescriptor = "n2c8h12k16r1"\n')
    out = run(load_suite(str(suite)), tmp_path / "run", RunOptions(processes=1)).parent
    assert main(["plan", str(out), "--workspace-budget", "1KiB"]) == EXIT_OK
    printed = capsys.readouterr().out
    assert "per-layer best" in printed and "passed over" in printed
    record = json.loads((out / "plan.json").read_text())
    assert record["workspace_budget_bytes"] == 1024
    assert [layer["layer"] for layer in record["layers"]] == ["a", "b"]
    assert record["layers"][0]["count"] == 2
    assert pd.read_csv(out / "plan.csv")["layer"].tolist() == ["a", "b"]
    with pytest.raises(SystemExit) as exit_code:  # argparse's own exit, with the message
        main(["plan", str(out), "--workspace-budget", "lots"])
    assert exit_code.value.code == EXIT_USAGE
    assert "expected a size such as 64MiB" in capsys.readouterr().err
    assert main(["plan", str(out), "--backend", "cupy"]) == EXIT_USAGE
    assert main(["plan", str(out), "--workspace-budget", "0"]) == EXIT_OK  # nothing fits
    assert "none" in capsys.readouterr().out
    assert json.loads((out / "plan.json").read_text())["layers"][0]["algo"] is None


def test_the_report_of_a_network_run_has_its_plan(tmp_path: Path) -> None:
    suite = tmp_path / "net.toml"
    suite.write_text('[suite]\nnetwork = true\nalgorithms = ["im2col", "torch"]\n'
                     'budget_s = 0.01\nmin_repeats = 3\n\n'
                     '[[case]]\nname = "a"\ndescriptor = "n1c8h12k8r3p1"\ncount = 3\n\n'
                     '[[case]]\nname = "b"\ndescriptor = "maxpool_n1c8h12r2"\n')
    out = run(load_suite(str(suite)), tmp_path / "run", RunOptions(processes=1)).parent
    assert main(["report", str(out)]) == EXIT_OK
    page = (out / "index.html").read_text()
    assert "network's plan" in page and "per-layer best" in page
    assert (out / "net-plan.png").stat().st_size > 0
