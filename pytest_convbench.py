"""The pytest plugin (entry point ``pytest11``): suite cases as pytest-benchmark benchmarks, each
checked against the float64 oracle in the same test.

    import pytest

    @pytest.mark.convbench("smoke", algorithms=["im2col", "torch"])
    def test_conv(convbench_case, convbench_benchmark):
        convbench_benchmark(convbench_case)

Every (case, algorithm, backend) of the suite becomes one test, with the id
``case-algo-backend``; one that cannot run is skipped with the registry's reason, and a wrong
result fails the test. pytest-benchmark does the timing, so ``--benchmark-only``,
``--benchmark-autosave`` and ``--benchmark-compare-fail=median:10%`` apply as usual.

Every pytest session of an environment where convbench is installed loads this module, so it
lives outside the convbench package and imports nothing of it: numpy, torch, the algorithms and
`import convbench`'s idle-thread settings come only with a test that uses its marker or
fixtures. Those need pytest-benchmark (convbench[test]).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from convbench.oracle import Check
    from convbench.run.suite import Case, Suite

WRONG = pytest.StashKey[bool]()  # set on a test whose algorithm gave a wrong result
MARKER = "convbench(suite, algorithms=None, backends=None, batch=None): parametrize the test's " \
    "convbench_case argument with every case x algorithm x backend of a convbench suite"


@dataclass(frozen=True)
class BenchCase:
    """One benchmark: a suite's case, run by one algorithm on one backend."""

    suite: Suite
    case: Case
    algorithm: str
    backend: str

    @property
    def id(self) -> str:
        return f"{self.case.name}-{self.algorithm}-{self.backend}"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("convbench")
    group.addoption("--convbench-suite", help="suite for convbench_case tests, overriding the "
                    "suite named by their convbench marker")
    group.addoption("--convbench-threads", type=int, help="threads for BLAS and torch in "
                    "convbench benchmarks (default: all cores)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)


def bench_cases(suite_name: str, algorithms: list[str] | None = None,
                backends: list[str] | None = None, batch: int | None = None) -> list[BenchCase]:
    """Every (case, algorithm, backend) of a suite, in the order `convbench run` uses."""
    from convbench.run.runner import RunOptions, plan
    from convbench.run.suite import load_suite

    suite = load_suite(suite_name, batch=batch)
    options = RunOptions(algorithms=tuple(algorithms) if algorithms else None,
                         backends=tuple(backends) if backends else None)
    return [BenchCase(suite, t.case, t.algorithm.name, t.backend) for t in plan(suite, options)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "convbench_case" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("convbench")
    args, kwargs = (marker.args, marker.kwargs) if marker else ((), {})
    suite = metafunc.config.getoption("convbench_suite") or (args[0] if args else "smoke")
    cases = bench_cases(suite, kwargs.get("algorithms"), kwargs.get("backends"),
                        kwargs.get("batch"))
    metafunc.parametrize("convbench_case", cases, ids=[c.id for c in cases])


def run_checked(bench: BenchCase, benchmark: Any, threads: int, node: pytest.Item) -> Check:
    """Skip with the reason if the task may not run; check the first call against the oracle
    (the test fails on a wrong result); then let pytest-benchmark time the call."""
    from convbench import oracle
    from convbench.algorithms import registry
    from convbench.run.runner import Task, pinned_threads, precheck

    p = bench.case.problem
    algorithm = registry.get(p.op, bench.algorithm)
    refused = precheck(bench.suite, Task(bench.case, algorithm, bench.backend))
    if refused:
        pytest.skip(f"{refused[0]}: {refused[1]}")
    exact = bench.suite.exact and algorithm.exact
    inputs = oracle.make_inputs(p, bench.suite.seed, bench.suite.exact)
    reference = oracle.reference(p, inputs)
    with pinned_threads(threads):
        check = oracle.check_algorithm(p, algorithm.fn(p, *inputs.arrays), reference,
                                       algorithm, exact=exact)
        if not check.ok:
            node.stash[WRONG] = True
        assert check.ok, (f"{bench.id}: wrong result: normalised error {check.norm_err:.3g} "
                          f"(max abs {check.max_abs_err:.3g}) over tolerance "
                          f"{'bit-exact' if exact else f'{check.tolerance:.3g}'}")
        benchmark.group = f"{bench.suite.name}:{bench.case.name}"
        benchmark.extra_info.update({
            "descriptor": str(p), "algo": bench.algorithm, "backend": bench.backend,
            "flops": p.flops, "threads": threads, "norm_err": check.norm_err,
            "tolerance": check.tolerance})
        benchmark(algorithm.fn, p, *inputs.arrays)
    return check


@pytest.fixture
def convbench_benchmark(request: pytest.FixtureRequest, benchmark: Any
                        ) -> Callable[[BenchCase], Check]:
    """``convbench_benchmark(convbench_case)``: check the case, then benchmark it. `benchmark`
    is pytest-benchmark's fixture (so --benchmark-only keeps these tests)."""
    threads = request.config.getoption("convbench_threads") or os.cpu_count() or 1
    return lambda bench: run_checked(bench, benchmark, threads, request.node)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A wrong result fails its test before pytest-benchmark timed anything: mark the fixture
    skipped (after pytest-benchmark's own hook) so that it adds no "fixture was not used"
    warning to the failure."""
    yield
    benchmark = getattr(item, "funcargs", {}).get("benchmark")
    if item.stash.get(WRONG, False) and benchmark is not None:
        benchmark.skipped = True
