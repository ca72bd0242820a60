"""Timing zero-argument closures, the way torch.utils.benchmark and timeit do it.

One warm-up call; then calls are grouped so that each sample lasts at least `min_sample_s`
(timer resolution and loop overhead vanish), and samples are taken until both `budget_s` has been
spent and `min_repeats` samples exist, but never past `limit_s` once three samples are in.
`limit_s` is also the case limit on one call: a sample whose time per call passes it ends the
series, which is then `abandoned` (its samples kept), and the harness records the row as over
budget. Every raw sample is kept: the statistics are properties over them, and IQR/median above
10% flags the measurement as noisy. A measurement may hold the samples of several processes
(`merged`), each sample with the index of the process that took it.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

NOISY_IQR_OVER_MEDIAN = 0.10


@dataclass(frozen=True)
class Measurement:
    """Raw per-call times (seconds), each the mean of `number` back-to-back calls."""

    samples_s: tuple[float, ...]
    number: int = 1
    # The process that took each sample (0: the run's own, 1...: convbench.run.processes); empty
    # when one process took them all.
    process_of: tuple[int, ...] = ()
    abandoned: bool = False  # a sample passed the case limit on one call; the series stopped

    @cached_property
    def median_s(self) -> float:
        return float(np.median(self.samples_s))

    @cached_property
    def iqr_s(self) -> float:
        q1, q3 = np.percentile(self.samples_s, [25, 75])
        return float(q3 - q1)

    @cached_property
    def min_s(self) -> float:
        return float(min(self.samples_s))

    @property
    def repeats(self) -> int:
        return len(self.samples_s)

    @property
    def noisy(self) -> bool:
        return self.repeats > 1 and self.iqr_s > NOISY_IQR_OVER_MEDIAN * self.median_s

    @property
    def processes(self) -> int:
        """How many processes took the samples."""
        return len(set(self.process_of)) if self.process_of else 1

    @staticmethod
    def merged(parts: list[Measurement]) -> Measurement:
        """One measurement of the samples of `parts`, part i taken by process i; abandoned when
        any part was. Calls per sample: the first part's (the others are given it)."""
        samples = tuple(s for part in parts for s in part.samples_s)
        process_of = tuple(i for i, part in enumerate(parts) for _ in part.samples_s)
        return Measurement(samples, parts[0].number, process_of,
                           any(part.abandoned for part in parts))


@dataclass(frozen=True)
class TimingPolicy:
    budget_s: float = 0.5
    min_repeats: int = 5
    limit_s: float = 20.0
    min_sample_s: float = 1e-3
    max_repeats: int = 10_000


def _time_calls(fn: Callable[[], object], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def calibrate(fn: Callable[[], object], min_sample_s: float, first_call_s: float) -> int:
    """Calls per sample so that a sample lasts at least `min_sample_s`. A single cold call
    misjudges fast functions, so (as timeit.autorange) groups grow tenfold until one lasts a
    tenth of the target, and the count is scaled from that group's time."""
    number, per_call = 1, first_call_s
    while per_call * number < min_sample_s / 10 and number < 10**6:
        number *= 10
        per_call = _time_calls(fn, number)
    return max(1, math.ceil(min_sample_s / max(per_call, 1e-12)))


def share(policy: TimingPolicy, processes: int) -> TimingPolicy:
    """One process's part of `policy` when `processes` take the samples: the budget divided
    among them, and ceil(min_repeats / processes) samples each, but at least three."""
    if processes <= 1:
        return policy
    return replace(policy, budget_s=policy.budget_s / processes,
                   min_repeats=max(3, math.ceil(policy.min_repeats / processes)))


def measure(fn: Callable[[], object], policy: TimingPolicy = TimingPolicy(),
            number: int | None = None) -> Measurement:
    """Warm up, calibrate the calls per sample (unless `number` is given), then sample until the
    policy is satisfied, or until a sample passes the limit on one call (abandoned)."""
    first_call_s = _time_calls(fn, 1)  # warm-up
    samples: list[float] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        number = number or calibrate(fn, policy.min_sample_s, first_call_s)
        start = time.perf_counter()
        while len(samples) < policy.max_repeats:
            elapsed = time.perf_counter() - start
            enough = elapsed >= policy.budget_s and len(samples) >= policy.min_repeats
            if enough or (elapsed >= policy.limit_s and len(samples) >= 3):
                break
            samples.append(_time_calls(fn, number))
            if samples[-1] > policy.limit_s:
                return Measurement(tuple(samples), number, abandoned=True)
    finally:
        if gc_was_enabled:
            gc.enable()
    return Measurement(tuple(samples), number)


INTERLEAVED_MIN_SAMPLE_S = 2e-3


def calls_per_sample(fn: Callable[[], object], sample_s: float) -> int:
    """The calls that make a sample of `sample_s`, from warm calls: one warm-up call, then runs
    of 1, 2, 4... calls, each run three times and the fastest kept (a run that another process
    interrupted must not set it), until a run lasts a tenth of `sample_s` (timeit's autorange).
    A call that lasts ten samples alone is one call a sample, whatever the other two runs say
    (interruptions only add time): a slow algorithm is not called twice more for nothing."""
    _time_calls(fn, 1)
    number, first_run_s = 1, _time_calls(fn, 1)
    if first_run_s >= 10 * sample_s:
        return 1
    while True:
        runs = [first_run_s] if number == 1 else []
        per_call = min(runs + [_time_calls(fn, number) for _ in range(3 - len(runs))])
        if per_call * number >= sample_s / 10:
            return max(1, math.ceil(sample_s / max(per_call, 1e-9)))
        number *= 2


def round_order(round_index: int, count: int) -> list[int]:
    """The closures' order in one round: rotated by one each round, so that no closure always
    runs first (cold) or right after the same neighbour."""
    return [(round_index + i) % count for i in range(count)]


def measure_interleaved(fns: list[Callable[[], object]],
                        policy: TimingPolicy = TimingPolicy(),
                        numbers: list[int] | None = None) -> list[Measurement]:
    """Time several closures in alternation: each round takes one sample of every closure.

    Drift (another process, clock frequency, heat) then hits all of them alike, and sample r of
    one closure is paired with sample r of every other. Budget and limit are per closure, as in
    `measure`; every Measurement has the same number of samples, in round order, except that a
    closure whose sample passes the limit on one call leaves the rounds (abandoned).

    Each sample starts cold, right after another closure ran (caches, branch predictors). The
    calls per sample are therefore calibrated on warm calls (`calls_per_sample`), never on one
    cold call, so that they, and with them the cold start's share of a sample, are the same
    from one run to the next. A sample lasts INTERLEAVED_MIN_SAMPLE_S or a little more: short
    enough that on a busy machine most samples escape being preempted (a time slice is a few
    ms), long enough for the timer. Given `numbers` (another process's calibration), each closure
    is warmed up by one sample's worth of calls instead, untimed.
    """
    sample_s = max(policy.min_sample_s, INTERLEAVED_MIN_SAMPLE_S)
    if numbers is None:
        numbers = [calls_per_sample(fn, sample_s) for fn in fns]
    else:
        for fn, number in zip(fns, numbers, strict=True):
            _time_calls(fn, number)
    samples: list[list[float]] = [[] for _ in fns]
    running = set(range(len(fns)))  # the closures not abandoned
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start, rounds = time.perf_counter(), 0
        while running and rounds < policy.max_repeats:
            elapsed = time.perf_counter() - start
            enough = elapsed >= policy.budget_s * len(fns) and rounds >= policy.min_repeats
            if enough or (elapsed >= policy.limit_s * len(fns) and rounds >= 3):
                break
            for i in (i for i in round_order(rounds, len(fns)) if i in running):
                samples[i].append(_time_calls(fns[i], numbers[i]))
                if samples[i][-1] > policy.limit_s:
                    running.discard(i)
            rounds += 1
    finally:
        if gc_was_enabled:
            gc.enable()
    return [Measurement(tuple(s), n, abandoned=i not in running)
            for i, (s, n) in enumerate(zip(samples, numbers))]


class DeferredTimer:
    """Stands in for `measure` while a harness goes through the algorithms of one case: each
    closure is recorded under a key (a placeholder Measurement is returned), and `measure_all`
    then times the recorded closures together, interleaved (or, without `interleave`, one after
    the other with `measure`)."""

    PLACEHOLDER = Measurement((math.nan,))

    def __init__(self, interleave: bool = True, processes: int = 1) -> None:
        self.fns: dict[object, Callable[[], object]] = {}
        self.policy = TimingPolicy()  # the suite's, as recorded
        self.interleave, self.processes = interleave, processes

    def timer(self, key: object) -> Callable[[Callable[[], object], TimingPolicy], Measurement]:
        def record(fn: Callable[[], object], policy: TimingPolicy) -> Measurement:
            self.fns[key], self.policy = fn, policy
            return self.PLACEHOLDER

        return record

    def discard(self, key: object) -> None:
        self.fns.pop(key, None)

    def measure_all(self, numbers: dict[object, int] | None = None) -> dict[object, Measurement]:
        """Every recorded closure timed, with this process's share of the policy when
        `processes` take the samples; with `numbers`, at those calls per sample."""
        keys, policy = list(self.fns), share(self.policy, self.processes)
        given = [numbers[k] for k in keys] if numbers is not None else None
        if self.interleave:
            measured = measure_interleaved([self.fns[k] for k in keys], policy, given)
        else:
            measured = [measure(self.fns[k], policy, given[i] if given else None)
                        for i, k in enumerate(keys)]
        return dict(zip(keys, measured))
