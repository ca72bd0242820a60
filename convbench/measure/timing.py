"""Timing zero-argument closures, the way torch.utils.benchmark and timeit do it.

One warm-up call; then calls are grouped so that each sample lasts at least `min_sample_s`
(timer resolution and loop overhead vanish), and samples are taken until both `budget_s` has been
spent and `min_repeats` samples exist, but never past `limit_s` once three samples are in.
Every raw sample is kept: the statistics are properties over them, and IQR/median above 10%
flags the measurement as noisy.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

NOISY_IQR_OVER_MEDIAN = 0.10


@dataclass(frozen=True)
class Measurement:
    """Raw per-call times (seconds), each the mean of `number` back-to-back calls."""

    samples_s: tuple[float, ...]
    number: int = 1

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


def measure(fn: Callable[[], object], policy: TimingPolicy = TimingPolicy()) -> Measurement:
    """Warm up, calibrate the calls per sample, then sample until the policy is satisfied."""
    first_call_s = _time_calls(fn, 1)  # warm-up
    samples: list[float] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        number = calibrate(fn, policy.min_sample_s, first_call_s)
        start = time.perf_counter()
        while len(samples) < policy.max_repeats:
            elapsed = time.perf_counter() - start
            enough = elapsed >= policy.budget_s and len(samples) >= policy.min_repeats
            if enough or (elapsed >= policy.limit_s and len(samples) >= 3):
                break
            samples.append(_time_calls(fn, number))
    finally:
        if gc_was_enabled:
            gc.enable()
    return Measurement(tuple(samples), number)


INTERLEAVED_MIN_SAMPLE_S = 2e-3


def calls_per_sample(fn: Callable[[], object], sample_s: float) -> int:
    """The calls that make a sample of `sample_s`, from warm calls: one warm-up call, then runs
    of 1, 2, 4... calls, each run three times and the fastest kept (a run that another process
    interrupted must not set it), until a run lasts a tenth of `sample_s` (timeit's autorange)."""
    _time_calls(fn, 1)
    number = 1
    while True:
        per_call = min(_time_calls(fn, number) for _ in range(3))
        if per_call * number >= sample_s / 10:
            return max(1, math.ceil(sample_s / max(per_call, 1e-9)))
        number *= 2


def round_order(round_index: int, count: int) -> list[int]:
    """The closures' order in one round: rotated by one each round, so that no closure always
    runs first (cold) or right after the same neighbour."""
    return [(round_index + i) % count for i in range(count)]


def measure_interleaved(fns: list[Callable[[], object]],
                        policy: TimingPolicy = TimingPolicy()) -> list[Measurement]:
    """Time several closures in alternation: each round takes one sample of every closure.

    Drift (another process, clock frequency, heat) then hits all of them alike, and sample r of
    one closure is paired with sample r of every other. Budget and limit are per closure, as in
    `measure`; every Measurement has the same number of samples, in round order.

    Each sample starts cold, right after another closure ran (caches, branch predictors). The
    calls per sample are therefore calibrated on warm calls (`calls_per_sample`), never on one
    cold call, so that they, and with them the cold start's share of a sample, are the same
    from one run to the next. A sample lasts INTERLEAVED_MIN_SAMPLE_S or a little more: short
    enough that on a busy machine most samples escape being preempted (a time slice is a few
    ms), long enough for the timer.
    """
    sample_s = max(policy.min_sample_s, INTERLEAVED_MIN_SAMPLE_S)
    numbers = [calls_per_sample(fn, sample_s) for fn in fns]
    samples: list[list[float]] = [[] for _ in fns]
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start, rounds = time.perf_counter(), 0
        while fns and rounds < policy.max_repeats:
            elapsed = time.perf_counter() - start
            enough = elapsed >= policy.budget_s * len(fns) and rounds >= policy.min_repeats
            if enough or (elapsed >= policy.limit_s * len(fns) and rounds >= 3):
                break
            for i in round_order(rounds, len(fns)):
                samples[i].append(_time_calls(fns[i], numbers[i]))
            rounds += 1
    finally:
        if gc_was_enabled:
            gc.enable()
    return [Measurement(tuple(s), n) for s, n in zip(samples, numbers)]


class DeferredTimer:
    """Stands in for `measure` while a harness goes through the algorithms of one case: each
    closure is recorded under a key (a placeholder Measurement is returned), and `measure_all`
    then times the recorded closures together, interleaved."""

    PLACEHOLDER = Measurement((math.nan,))

    def __init__(self) -> None:
        self.fns: dict[object, Callable[[], object]] = {}
        self.policy = TimingPolicy()

    def timer(self, key: object) -> Callable[[Callable[[], object], TimingPolicy], Measurement]:
        def record(fn: Callable[[], object], policy: TimingPolicy) -> Measurement:
            self.fns[key], self.policy = fn, policy
            return self.PLACEHOLDER

        return record

    def discard(self, key: object) -> None:
        self.fns.pop(key, None)

    def measure_all(self) -> dict[object, Measurement]:
        keys = list(self.fns)
        measured = measure_interleaved([self.fns[k] for k in keys], self.policy)
        return dict(zip(keys, measured))
