"""One fuzz case: a drawn problem, checked with every chosen algorithm that runs it on numpy
against the float64 oracle, with the tolerance each declares (bit for bit in exactness mode, for
the algorithms that declare themselves exact).

`run_case(config, index)` is a pure function of the configuration, the index and the registry
(plugins included): it draws its own problem, inputs and exactness mode from (seed, index), and
returns a picklable record. A campaign is `run_case` mapped over 0, 1, 2, ...; `cases` does
that here, one after another, and a cluster may do it anywhere.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
import numpy as np

from convbench import oracle
from convbench.algorithms.registry import Algorithm, all_algorithms, get, takes_rank
from convbench.fuzz.generate import case_rng, draw_from, op_names
from convbench.problems import Problem
from convbench.problems.ops import family_op, op_rank

BACKEND = "numpy"
SLOW_S = 0.05  # an algorithm whose pessimistic bound is over this is skipped on the case
EXACT_SHARE = 0.25  # the share of cases drawn in exactness mode
STATUSES = ("ok", "wrong", "error")


@dataclass(frozen=True)
class Config:
    """What a campaign draws and checks: `algorithms` and `ops` by name (None: all of them)."""

    seed: int = 0
    algorithms: tuple[str, ...] | None = None
    ops: tuple[str, ...] | None = None
    slow_s: float = SLOW_S

    def chosen_ops(self) -> tuple[str, ...]:
        """The ops to draw from: those asked for that some chosen algorithm runs on numpy."""
        return tuple(op for op in (self.ops or op_names())
                     if any(self.chooses(a) and takes_rank(a, op_rank(op))
                            for a in all_algorithms(op)))

    def chooses(self, algorithm: Algorithm) -> bool:
        return BACKEND in algorithm.backends and (
            self.algorithms is None or algorithm.name in self.algorithms)


def validate(config: Config) -> None:
    """Unknown algorithm or op names, or a choice that leaves nothing to draw, are bad usage."""
    known_ops = op_names()
    for op in config.ops or ():
        if op not in known_ops:
            raise ValueError(f"--op {op!r} is not a known op (known: {', '.join(known_ops)})")
    known = {a.name for a in all_algorithms() if BACKEND in a.backends}
    for name in config.algorithms or ():
        if name not in known:
            raise ValueError(f"--algo {name!r} is not a registered algorithm that runs on "
                             f"numpy (known: {', '.join(sorted(known))})")
    if not config.chosen_ops():
        raise ValueError("no chosen algorithm runs any chosen op")


@dataclass(frozen=True)
class CheckResult:
    """One algorithm on one problem: ok, wrong (over its tolerance) or error (it raised)."""

    algo: str
    ran: str  # what a selector picked; the algorithm itself otherwise
    status: str
    message: str = ""
    norm_err: float | None = None
    tolerance: float | None = None


@dataclass(frozen=True)
class CaseResult:
    """Case `index` of campaign `seed`: its problem, how its inputs were drawn, each check, and
    the algorithms passed over as too slow for a fuzz case."""

    seed: int
    index: int
    descriptor: str
    op: str
    input_seed: int
    exact: bool
    checks: tuple[CheckResult, ...]
    slow: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.status != "ok")


def run_case(config: Config, index: int) -> CaseResult:
    """Draw case `index` and check every chosen algorithm that runs it."""
    start = time.perf_counter()
    rng = case_rng(config.seed, index)
    p = draw_from(rng, config.chosen_ops())
    input_seed = int(rng.integers(2**31))
    exact = bool(rng.random() < EXACT_SHARE) and oracle.exact_mode_fits(p)
    inputs = oracle.make_inputs(p, input_seed, exact)
    ref = oracle.reference(p, inputs)
    checks, slow = [], []
    for algorithm in runners(p, config):
        if too_slow(algorithm, p, config.slow_s):
            slow.append(algorithm.name)
        else:
            checks.append(check_prepared(p, algorithm, inputs, ref, exact))
    return CaseResult(config.seed, index, str(p), p.op, input_seed, exact, tuple(checks),
                      tuple(slow), time.perf_counter() - start)


def runners(p: Problem, config: Config) -> list[Algorithm]:
    """The chosen algorithms of `p`'s op that run it on numpy. A plugin's declaration that
    raises counts as not running it: the algorithm is checked where it says it runs."""
    found = []
    for algorithm in all_algorithms(p.op):
        if not config.chooses(algorithm):
            continue
        try:
            if algorithm.why_not(p, BACKEND) is None:
                found.append(algorithm)
        except Exception:  # noqa: BLE001 - a plugin's check; nothing to run
            continue
    return found


def too_slow(algorithm: Algorithm, p: Problem, slow_s: float) -> bool:
    """Whether the algorithm's pessimistic bound says it would be slow on `p` (the teaching
    loops on all but tiny cases)."""
    try:
        bound = algorithm.bound_s(p, BACKEND)
    except Exception:  # noqa: BLE001 - a plugin's model; run it, its run will tell
        return False
    return bound is not None and bound > slow_s


def check_prepared(p: Problem, algorithm: Algorithm, inputs: oracle.Inputs,
                   ref: oracle.Reference, exact: bool) -> CheckResult:
    """Run `algorithm` on copies of the inputs and check it; whatever it raises is an error."""
    ran = algorithm
    try:
        ran = algorithm.resolve(p, BACKEND) if algorithm.resolve is not None else algorithm
        arrays = tuple(None if a is None else np.copy(a) for a in inputs.arrays)
        y = algorithm.run(p, *arrays)
        check = oracle.check_algorithm(p, y, ref, ran, exact=exact and algorithm.exact
                                       and ran.exact)
    except Exception as error:  # noqa: BLE001 - an algorithm that raises fails its check
        return CheckResult(algorithm.name, ran.name, "error", f"{type(error).__name__}: {error}")
    if check.ok:
        return CheckResult(algorithm.name, ran.name, "ok", "", check.norm_err, check.tolerance)
    limit = "bit-exact" if exact and algorithm.exact and ran.exact else f"{check.tolerance:.3g}"
    return CheckResult(algorithm.name, ran.name, "wrong", f"normalised error "
                       f"{check.norm_err:.3g} (max abs {check.max_abs_err:.3g}) over tolerance "
                       f"{limit}", check.norm_err, check.tolerance)


def check_one(p: Problem, algorithm: Algorithm | str, input_seed: int = 0,
              exact: bool = False) -> CheckResult:
    """One algorithm (or its name) on `p`, with inputs drawn from `input_seed`: the check a
    repro line reruns and the shrinker repeats."""
    if isinstance(algorithm, str):
        algorithm = get(p.op, algorithm)
    exact = exact and oracle.exact_mode_fits(p)
    inputs = oracle.make_inputs(p, input_seed, exact)
    return check_prepared(p, algorithm, inputs, oracle.reference(p, inputs), exact)


def cases(config: Config, count: int | None = None, seconds: float | None = None,
          start: int = 0) -> Iterator[CaseResult]:
    """Cases start, start + 1, ...: `count` of them, or as many as begin within `seconds`."""
    deadline = None if seconds is None else time.monotonic() + seconds
    index = start
    while (count is None or index < start + count) and (
            deadline is None or time.monotonic() < deadline):
        yield run_case(config, index)
        index += 1


@dataclass
class Tally:
    """Checks per (op, algorithm) and status over a campaign, and its failing checks in order."""

    cases: int = 0
    checks: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    slow: dict[tuple[str, str], int] = field(default_factory=dict)
    failures: list[tuple[CaseResult, CheckResult]] = field(default_factory=list)

    def add(self, case: CaseResult) -> None:
        self.cases += 1
        family = family_name(case)
        for check in case.checks:
            counts = self.checks.setdefault((family, check.algo), dict.fromkeys(STATUSES, 0))
            counts[check.status] += 1
            if check.status != "ok":
                self.failures.append((case, check))
        for name in case.slow:
            self.slow[(family, name)] = self.slow.get((family, name), 0) + 1

    @property
    def total_checks(self) -> int:
        return sum(sum(c.values()) for c in self.checks.values())

    def first_failures(self) -> list[tuple[CaseResult, CheckResult]]:
        """The first failure of each (op family, algorithm, status): the ones worth shrinking."""
        seen: dict[tuple[str, str, str], tuple[CaseResult, CheckResult]] = {}
        for case, check in self.failures:
            seen.setdefault((family_name(case), check.algo, check.status), (case, check))
        return list(seen.values())

    def like(self, case: CaseResult, check: CheckResult) -> int:
        """How many failures share this one's op family, algorithm and status."""
        key = (family_name(case), check.algo, check.status)
        return sum(1 for c, k in self.failures if (family_name(c), k.algo, k.status) == key)


def family_name(case: CaseResult) -> str:
    """The registry's name of a case's op family: conv3d_backward -> conv2d_backward."""
    return family_op(case.op)
