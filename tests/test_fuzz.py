"""`convbench fuzz`: the generator draws valid, bounded, edge-biased problems of every op, rank,
dtype and layout, deterministically; a campaign on the shipped algorithms is clean; a broken
plugin is caught, shrunk to a problem of a few elements per axis, and its repro line fails
again; the exit codes."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from collections import Counter
from typing import Any

import numpy as np
import pytest

from convbench.algorithms import registry
from convbench.cli import EXIT_OK, EXIT_USAGE, EXIT_WRONG, main
from convbench.fuzz import Config, check_one, draw, run_case, shrink
from convbench.fuzz.generate import within_bounds
from convbench.fuzz.shrink import measure, smaller
from convbench.problems import LAYOUTS, parse
from convbench.problems.ops import OPS

from conftest import AddAlgorithm

DRAWS = 400


@pytest.fixture(scope="module")
def drawn() -> list[Any]:
    return [draw(11, i) for i in range(DRAWS)]


def test_every_op_rank_direction_dtype_and_layout_is_drawn(drawn: list[Any]) -> None:
    ops = Counter(p.op for p in drawn)
    assert set(ops) == {op.name for op in OPS}
    assert {(p.family, p.direction) for p in drawn} == {
        ("conv", "fwd"), ("conv", "bwd_data"), ("conv", "bwd_weight"), ("deconv", "fwd"),
        ("pool", "fwd"), ("pool", "bwd_data")}
    assert {p.kind for p in drawn if p.family == "pool"} == {"max", "avg"}
    assert {p.dtype for p in drawn} == {"float32", "float64"}
    assert {p.layout for p in drawn} == set(LAYOUTS)


def test_drawn_problems_are_valid_bounded_and_round_trip(drawn: list[Any]) -> None:
    for p in drawn:
        assert within_bounds(p), p
        assert parse(str(p)) == p


def test_the_edges_are_represented(drawn: list[Any]) -> None:
    def count(predicate: Any) -> int:
        return sum(1 for p in drawn if predicate(p))

    weighted = [p for p in drawn if p.family != "pool"]
    edges = {
        "1x1 input": count(lambda p: set(p.size) == {1}),
        "kernel = input": count(lambda p: p.kernel == p.size and max(p.size) > 1),
        "stride past the kernel": count(lambda p: max(
            s - k for s, k in zip(p.stride, p.kernel)) > 0),
        "dilation": count(lambda p: max(p.dilation) > 1),
        "depthwise": sum(1 for p in weighted if p.groups == p.c > 1),
        "grouped": sum(1 for p in weighted if 1 < p.groups < p.c),
        "prime sizes": count(lambda p: any(i in (5, 7, 11, 13, 17, 23) for i in p.size)),
        "per-side padding": count(lambda p: not p.symmetric),
        "ceil mode": count(lambda p: getattr(p, "ceil_mode", False)),
        "count_include_pad off": count(lambda p: not getattr(p, "count_include_pad", True)),
        "output_padding": count(lambda p: max(getattr(p, "output_padding", (0,))) > 0),
        "bias": count(lambda p: getattr(p, "bias", False)),
    }
    assert min(edges.values()) >= 5, edges


def test_a_case_is_a_function_of_seed_and_index() -> None:
    assert [str(draw(5, i)) for i in range(20)] == [str(draw(5, i)) for i in range(20)]
    assert [str(draw(5, i)) for i in range(20)] != [str(draw(6, i)) for i in range(20)]
    config = Config(seed=5, algorithms=("im2col", "windowed"))
    first, again = run_case(config, 3), run_case(config, 3)
    assert dataclasses.replace(first, seconds=0) == dataclasses.replace(again, seconds=0)


def test_a_campaign_on_the_shipped_algorithms_is_clean(capsys: pytest.CaptureFixture) -> None:
    assert main(["fuzz", "--cases", "100", "--seed", "2"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "convbench fuzz: ok (100 cases" in out and "FAILED" not in out


def shifted_im2col(p: Any, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """im2col reading every window one pixel early along the last axis where it is padded:
    one pixel too little padding before it, one too much after."""
    if p.padding[-1] > 0:
        p = dataclasses.replace(p, padding=p.padding[:-1] + (p.padding[-1] - 1,),
                                padding_end=p.padding_after[:-1] + (p.padding_after[-1] + 1,))
    return registry.get("conv2d", "im2col").run(p, x, w, b)


def add_shifted(temporary_algorithm: AddAlgorithm) -> None:
    temporary_algorithm("t_shifted", shifted_im2col, ranks=(1, 2, 3), per_side=True,
                        layouts=LAYOUTS, exact=True)


def test_a_broken_plugin_is_caught_shrunk_and_reproduced(
        temporary_algorithm: AddAlgorithm, capsys: pytest.CaptureFixture) -> None:
    add_shifted(temporary_algorithm)
    assert main(["fuzz", "--cases", "40", "--algo", "t_shifted"]) == EXIT_WRONG
    out = capsys.readouterr().out
    assert "FAILED t_shifted wrong" in out
    repro = re.search(r"repro: convbench (fuzz --repro (\S+) --algo t_shifted --seed \d+.*)$",
                      out, re.MULTILINE)
    assert repro, out
    shrunk = parse(repro.group(2))
    assert max(shrunk.size) <= 4 and max(shrunk.kernel) <= 3, shrunk
    assert shrunk.n == 1 and shrunk.c <= 2 and shrunk.k <= 2, shrunk
    assert main(repro.group(1).split()) == EXIT_WRONG
    assert "t_shifted: wrong" in capsys.readouterr().out
    assert main(["fuzz", "--repro", repro.group(2), "--algo", "im2col"]) == EXIT_OK


def test_shrinking_keeps_the_kind_of_failure(temporary_algorithm: AddAlgorithm) -> None:
    """An algorithm that raises on groups > 1 shrinks to a small grouped problem, still raising
    the same exception; every move makes the problem smaller."""
    def no_groups(p: Any, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        if p.groups > 1:
            raise IndexError("groups")
        return registry.get("conv2d", "im2col").run(p, x, w, b)

    temporary_algorithm("t_no_groups", no_groups, ranks=(1, 2, 3), layouts=LAYOUTS)
    p = parse("nhwc_n3c12id5h7w6k6kd3r3s2st2p1g6b1")
    assert check_one(p, "t_no_groups").status == "error"
    result = shrink(p, "t_no_groups")
    assert result.check.status == "error" and result.check.message.startswith("IndexError")
    assert str(result.problem) == "n1c2w1k2s1g2"
    assert all(measure(q) < measure(p) for q in smaller(p))


@pytest.mark.parametrize("args", [
    ["--cases", "3", "--minutes", "1"],
    ["--cases", "0"],
    ["--algo", "no_such_algo"],
    ["--op", "conv4d"],
    ["--repro", "n1c1h3k1r9"],
    ["--repro", "n1c1h3k1r3", "--algo", "winograd_f2x3", "--cases", "2"],
    ["--repro", "n1c4h3k1r3st2", "--algo", "winograd_f2x3"],
    ["--exact"],
])
def test_bad_usage_exits_2(args: list[str]) -> None:
    try:
        code = main(["fuzz", *args])
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    assert code == EXIT_USAGE


def test_repro_and_minutes_exit_0(capsys: pytest.CaptureFixture) -> None:
    assert main(["fuzz", "--repro", "n1c2w5k3s3p1pe2", "--exact"]) == EXIT_OK
    assert "n1c2w5k3s3p1pe2 im2col: ok" in capsys.readouterr().out
    assert main(["fuzz", "--minutes", "0.01", "--op", "max_pool1d"]) == EXIT_OK


def test_a_campaign_on_a_dask_cluster_checks_the_same_cases() -> None:
    """Each case is a pure function of the seed and its index: on local:2 the campaign draws and
    checks exactly what it does here (correctness needs no exclusive machine). In a process of
    its own, as a user runs it (Dask's sockets outlive a test's warnings filter)."""
    pytest.importorskip("distributed")

    def last_line(*extra: str) -> str:
        done = subprocess.run([sys.executable, "-m", "convbench", "fuzz", "--cases", "40",
                               "--seed", "7", *extra], capture_output=True, text=True,
                              timeout=300, check=True)
        return done.stdout.strip().splitlines()[-1].rsplit(",", 1)[0]  # less the time

    here, there = last_line(), last_line("--cluster", "local:2")
    assert here == there and "40 cases" in here
