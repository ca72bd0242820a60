"""algo="auto" chooses by what algorithms declare: roles, support and their own cost models;
it knows none of them by name, so a plugin competes like a built-in."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from convbench.algorithms import auto, cost, registry
from convbench.algorithms.registry import Algorithm
from convbench.problems import ConvProblem
from convbench.problems.descriptor import parse
from convbench.run.suite import load_suite

DENSE = parse("n8c64h56k64r3p1")
STRIDED = parse("n8c128h56k128r3st2p1")
TEST_OP = "test_auto_op"


def never_called(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("auto must choose without running anything")


def refuses(p: Any) -> str:
    return "refuses every problem"


@dataclass(frozen=True)
class OpProblem:
    """A problem of an op that only this module registers algorithms for."""

    op: str = TEST_OP


@pytest.fixture
def add() -> Iterator[Callable[..., Algorithm]]:
    """Register algorithms for one test; removed afterwards whatever happens, and auto's cached
    choices dropped."""
    registry.all_algorithms()  # the built-ins and plugins first, so that they are not ours
    added: list[tuple[str, str]] = []

    def register(name: str, op: str = "conv2d", **declaration: Any) -> Algorithm:
        declaration.setdefault("backends", ("numpy",))
        algorithm = Algorithm(op=op, name=name, fn=never_called, **declaration)
        registry.add(algorithm)
        added.append((op, name))
        return algorithm

    auto.forget()
    try:
        yield register
    finally:
        for op, name in added:
            registry.remove(op, name)
        auto.forget()


def test_a_plugin_candidate_with_the_lowest_cost_is_chosen(add) -> None:
    before = auto.choose(DENSE)
    plugin = add("plugin_fastest", cost_s=lambda p: 1e-9)
    assert auto.choose(DENSE).name == "plugin_fastest"
    assert auto.candidates(DENSE)[0].name == "plugin_fastest"
    registry.replace(replace(plugin, cost_s=lambda p: 1e6))
    assert auto.choose(DENSE) == before  # the registry changed: no stale cached choice


def test_a_cheaper_candidate_that_does_not_support_the_problem_is_passed_over(add) -> None:
    expected = auto.choose(STRIDED)
    add("plugin_refuses", cost_s=lambda p: 1e-9, checks=(refuses,))
    add("plugin_gpu_only", backends=("cupy",), cost_s=lambda p: 1e-9)
    assert auto.choose(STRIDED) == expected
    names = [a.name for a in auto.candidates(STRIDED)]
    assert "plugin_refuses" not in names and "plugin_gpu_only" not in names
    assert auto.candidates(STRIDED, "cupy")[0].name == "plugin_gpu_only"


def test_candidates_are_ranked_by_cost_then_uncosted_in_registration_order(add) -> None:
    add("plugin_uncosted_a")
    add("plugin_estimated", estimate_s=lambda p: 1.0)  # a time limit's bound is no cost
    add("plugin_uncosted_b")
    add("plugin_costly", cost_s=lambda p: 1e6)
    ranked = [a for a in auto.candidates(DENSE) if a.role == "candidate"]
    assert [a.name for a in ranked[-4:]] == ["plugin_costly", "plugin_uncosted_a",
                                             "plugin_estimated", "plugin_uncosted_b"]
    costs = [a.cost_s(DENSE) for a in ranked if a.cost_s]
    cheapest = min(costs)
    level = [c for c in costs if c <= cheapest * (1 + auto.LEVEL)]
    assert costs[:len(level)] == level and costs[len(level):] == sorted(costs[len(level):])


def test_among_level_costs_the_least_rounding_comes_first(add) -> None:
    add("plugin_cheapest", cost_s=lambda p: 1e-9, tolerance_floor_eps=384.0)
    add("plugin_level_exact", cost_s=lambda p: 1.05e-9)
    add("plugin_twice", cost_s=lambda p: 2e-9)
    names = [a.name for a in auto.candidates(DENSE)][:3]
    assert names == ["plugin_level_exact", "plugin_cheapest", "plugin_twice"]


def test_without_a_supporting_candidate_the_reference_comes_before_the_teaching_loop(add) -> None:
    p = OpProblem()
    add("plugin_loops", op=TEST_OP, role="teaching", cost_s=lambda p: 1.0)
    reference = add("plugin_reference", op=TEST_OP, role="reference", cost_s=lambda p: 2.0)
    add("plugin_candidate", op=TEST_OP, cost_s=lambda p: 1e-9, checks=(refuses,))
    add("plugin_selector", op=TEST_OP, role="selector")
    assert [a.name for a in auto.candidates(p)] == ["plugin_reference", "plugin_loops"]
    assert auto.choose(p).name == "plugin_reference"
    registry.replace(replace(reference, checks=(refuses,)))
    assert auto.choose(p).name == "plugin_loops"


def test_the_selector_and_other_roles_are_never_ranked_as_candidates() -> None:
    roles = {a.name: a.role for a in auto.candidates(DENSE)}
    assert "auto" not in roles
    assert registry.get("conv2d", "auto").role == "selector"
    ranked = [roles[name] for name in roles]
    assert ranked == sorted(ranked, key=auto.FALLBACK_ROLES.index)
    assert auto.never_tuned() >= {"auto", "torch", "direct_naive"}


def test_no_algorithm_is_named_in_auto_py() -> None:
    source = Path(auto.__file__).read_text()
    own = registry.get("conv2d", "auto").name  # its own registration names it
    names = {a.name for a in registry.all_algorithms()} - {own}
    named = [n for n in names if re.search(rf"\b{re.escape(n)}\b", source)]
    assert named == []


@pytest.mark.parametrize("role", ["", "fast", "Reference", "candidates"])
def test_an_unknown_role_is_refused_at_registration(role: str) -> None:
    with pytest.raises(ValueError, match=rf"role={role!r} is not one of candidate, reference"):
        registry.register("conv2d", "plugin_bad_role", role=role)(never_called)
    assert "plugin_bad_role" not in registry.algorithms("conv2d")


def test_every_forward_conv_algorithm_declares_its_cost_and_role() -> None:
    roles = {"torch": "reference", "torch_im2col": "reference", "direct_naive": "teaching",
             "auto": "selector"}
    for algorithm in registry.all_algorithms("conv2d"):
        assert algorithm.role == roles.get(algorithm.name, "candidate"), algorithm.name
        assert (algorithm.cost_s is None) == (algorithm.role == "selector"), algorithm.name


def test_costs_are_positive_and_finite_wherever_declared_supported() -> None:
    from test_algorithms import GRID

    problems = [*GRID.values(), *(c.problem for c in load_suite("quick").cases)]
    for p in problems:
        for algorithm in registry.all_algorithms("conv2d"):
            if algorithm.cost_s and any(algorithm.covers(p, b) for b in algorithm.backends):
                value = algorithm.cost_s(p)
                assert value > 0 and math.isfinite(value), (algorithm.name, str(p))


def test_costs_grow_with_the_work() -> None:
    small, large = parse("n1c64h28k64r3p1"), parse("n8c64h56k64r3p1")
    for algorithm in registry.all_algorithms("conv2d"):
        if algorithm.cost_s and algorithm.covers(small, algorithm.backends[0]):
            assert algorithm.cost_s(small) < algorithm.cost_s(large), algorithm.name


def test_the_machine_model_can_be_replaced() -> None:
    im2col = registry.get("conv2d", "im2col")
    before = im2col.cost_s(DENSE)
    old = cost.set_machine(cost.MachineModel(gemm_flops_per_s=cost.MACHINE.gemm_flops_per_s / 2))
    try:
        assert im2col.cost_s(DENSE) > before
    finally:
        cost.set_machine(old)
    assert im2col.cost_s(DENSE) == before


def test_fft_overtakes_im2col_with_the_kernel_as_measured() -> None:
    """README (kernels suite, C = K = 32, N = 8): level at 5x5, FFT ahead from 7x7."""
    fft, im2col = registry.get("conv2d", "fft"), registry.get("conv2d", "im2col")
    for r in (7, 9, 11):
        p = ConvProblem(8, 32, 64, 64, 32, r, r, padding=r // 2)
        assert fft.cost_s(p) < im2col.cost_s(p)
    p = ConvProblem(8, 32, 64, 64, 32, 3, 3, padding=1)
    assert im2col.cost_s(p) < fft.cost_s(p)


def test_pooling_takes_windowed_not_the_loops_nor_the_reference() -> None:
    """Whether the pooling loops declare their role or only a pessimistic estimate_s, auto
    takes the windowed algorithm, which supports every pooling problem."""
    for case in load_suite("pooling").cases:
        assert auto.choose(case.problem).name == "windowed", str(case.problem)
