"""The `convbench` command end to end: list, describe, run, exit codes, --help everywhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from convbench.algorithms import registry
from convbench.cli import EXIT_OK, EXIT_USAGE, EXIT_WRONG, main
from convbench.run.rundir import read_results

from conftest import AddAlgorithm


ENV = {"COLUMNS": "200", "PATH": "", "CONVBENCH_CACHE": os.environ["CONVBENCH_CACHE"]}


def convbench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "convbench.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=ENV)


@pytest.mark.parametrize("command", [[], ["list"], ["describe"], ["run"]])
def test_help_on_every_command(command: list[str]) -> None:
    result = convbench(*command, "--help")
    assert result.returncode == 0 and "usage: convbench" in result.stdout


def test_list_shows_algorithms_and_suites_without_importing_torch() -> None:
    code = ("import sys; from convbench.cli import main; main(['list']); "
            "print('imported torch:', 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=ENV, timeout=60)
    assert result.returncode == 0, result.stderr
    for name in ("direct_naive", "direct", "im2col", "torch", "smoke", "quick", "resnet50"):
        assert name in result.stdout
    assert "imported torch: False" in result.stdout


def test_describe_shows_the_shape_facts() -> None:
    result = convbench("describe", "n8c64h56k64r3p1")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "(8, 64, 56, 56)" in out  # output shape: floor((56 + 2 - 2 - 1)/1) + 1 = 56
    assert "floor((56 + 2*1 - 1*(3-1) - 1) / 1) + 1 = 56" in out
    assert "36,864" in out  # params: 64*3*3*64 = 36,864 (no bias)
    assert "924,844,032" in out  # MACs: 8*64*56*56 * 64*9 = 1,605,632 * 576
    assert "1,849,688,064" in out  # FLOPs: 2 * MACs
    assert "3 x 3" in out  # receptive field of one dense 3x3 layer
    assert "55.12 MiB" in out  # im2col: 64*9 * 8*56*56 * 4 B = 576 * 25,088 * 4 = 57,802,752 B


def test_describe_pooling() -> None:
    result = convbench("describe", "maxpool_n1c64h112r3st2p1")
    assert result.returncode == 0 and "(1, 64, 56, 56)" in result.stdout


@pytest.mark.parametrize("args", [["describe", "n8c64"], ["describe", "c3h4k2r9"],
                                  ["run", "no_such_suite"], ["run", "smoke", "--algo", "nope"],
                                  ["run", "smoke", "--batch", "0"], ["frobnicate"]])
def test_bad_input_exits_2_with_a_message(args: list[str], tmp_path: Path) -> None:
    result = convbench(*args, "--out", str(tmp_path)) if args[0] == "run" else convbench(*args)
    assert result.returncode == EXIT_USAGE
    assert result.stderr.strip() and "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())  # nothing ran, nothing written


def test_malformed_suite_exits_2_naming_file_line_and_field(tmp_path: Path) -> None:
    suite = tmp_path / "bad.toml"
    suite.write_text('[suite]\nbudget_s = 0.01\n\n[[case]]\nname = "a"\nc = 4\nh = 5\nk = 2\n'
                     'r = 3\nstride = 0\n')
    result = convbench("run", str(suite), "--out", str(tmp_path / "out"))
    assert result.returncode == EXIT_USAGE
    assert f"{suite}:10:" in result.stderr and "'stride'" in result.stderr
    assert not (tmp_path / "out").exists()


def test_run_smoke_end_to_end(tmp_path: Path) -> None:
    result = convbench("run", "smoke", "--out", str(tmp_path), "--no-progress")
    assert result.returncode == EXIT_OK, result.stdout + result.stderr
    frame = read_results(tmp_path / "smoke")
    algorithms = [a.name for a in registry.all_algorithms("conv2d")]  # every backend's
    assert len(frame) == 4 * len(algorithms) and set(frame["algo"]) == set(algorithms)
    assert set(frame["status"]) <= {"ok", "unsupported"}
    assert (tmp_path / "smoke" / "meta.json").exists()
    # the defaults: every timed row has samples from 3 processes, interleaved, on one thread
    timed = frame[frame["status"] == "ok"]
    assert set(timed["processes"]) == {3} and set(frame["threads"]) == {1}
    assert "speedup vs torch" in result.stdout and "*" in result.stdout
    assert "geometric-mean speedup vs torch" in result.stdout


def test_run_options_select_algorithms_and_batch(tmp_path: Path) -> None:
    result = convbench("run", "smoke", "--out", str(tmp_path), "--algo", "im2col,torch",
                       "--batch", "3", "--no-progress", "--budget", "0.01", "--processes", "1")
    assert result.returncode == EXIT_OK, result.stderr
    frame = read_results(tmp_path / "smoke")
    assert set(frame["algo"]) == {"im2col", "torch"}
    assert all(d.startswith("n3") for d in frame["descriptor"])


def test_a_wrong_result_exits_1(tmp_path: Path, temporary_algorithm: AddAlgorithm) -> None:
    def zeros(p, x, w, b):
        import numpy as np

        return np.zeros(p.output_shape, dtype=x.dtype)

    temporary_algorithm("t_zeros", zeros)
    code = main(["run", "smoke", "--algo", "t_zeros,im2col", "--out", str(tmp_path),
                 "--no-progress", "--budget", "0.01", "--processes", "1"])
    assert code == EXIT_WRONG
    frame = read_results(tmp_path / "smoke")
    assert set(frame[frame["algo"] == "t_zeros"]["status"]) == {"wrong"}


def test_run_defaults_are_the_gates_recipe() -> None:
    """`convbench run` without flags: interleaved, one thread, samples from 3 processes;
    --no-interleave and --processes opt out."""
    from convbench.cli import build_parser
    from convbench.commands.run import PROCESSES

    args = build_parser().parse_args(["run", "smoke"])
    assert args.interleave is True and args.processes == PROCESSES == 3
    assert args.threads is None  # the harness's default: one thread
    args = build_parser().parse_args(["run", "smoke", "--no-interleave", "--processes", "1"])
    assert args.interleave is False and args.processes == 1
