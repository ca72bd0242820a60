"""Timing: Measurement's statistics on known samples, and measure()'s stopping rules with fake
closures. Every test here is fast (well under a second each) and asserts no speed: only counts,
lower bounds that follow from the policy, and upper bounds with generous margins."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time

import pytest

from convbench.measure import timing
from convbench.measure.timing import (NOISY_IQR_OVER_MEDIAN, Measurement, TimingPolicy,
                                      calls_per_sample, measure, measure_interleaved, share)

# --- Measurement statistics -------------------------------------------------------------------


def test_statistics_of_five_samples() -> None:
    # sorted: 1, 2, 3, 4, 100. Linear-interpolated percentiles on 5 points sit on indices:
    # 25% -> index 0.25*4 = 1 -> 2;  50% -> index 2 -> 3;  75% -> index 3 -> 4.  IQR = 4 - 2 = 2.
    m = Measurement((3.0, 100.0, 1.0, 4.0, 2.0), number=7)
    assert m.median_s == 3.0
    assert m.iqr_s == 2.0
    assert m.min_s == 1.0
    assert m.repeats == 5
    assert m.number == 7
    assert m.noisy  # 2 > 0.1 * 3


def test_statistics_of_four_samples_interpolate() -> None:
    # sorted 1, 2, 3, 4: median (2+3)/2 = 2.5;
    # 25% -> index 0.75 -> 1 + 0.75*(2-1) = 1.75;  75% -> index 2.25 -> 3 + 0.25*(4-3) = 3.25
    # IQR = 3.25 - 1.75 = 1.5
    m = Measurement((4.0, 1.0, 3.0, 2.0))
    assert m.median_s == pytest.approx(2.5)
    assert m.iqr_s == pytest.approx(1.5)
    assert m.min_s == 1.0
    assert m.repeats == 4


def test_noisy_threshold_is_ten_percent() -> None:
    assert NOISY_IQR_OVER_MEDIAN == 0.10
    # Five samples: q1 = 2nd smallest, median = 3rd, q3 = 4th (see above); the extremes
    # (0.5 and 3.0) do not matter.
    just_below = Measurement((3.0, 0.95, 1.0, 1.04, 0.5))  # IQR 1.04 - 0.95 = 0.09 < 0.10
    just_above = Measurement((3.0, 0.95, 1.0, 1.06, 0.5))  # IQR 1.06 - 0.95 = 0.11 > 0.10
    assert just_below.median_s == just_above.median_s == 1.0
    assert just_below.iqr_s == pytest.approx(0.09)
    assert just_above.iqr_s == pytest.approx(0.11)
    assert not just_below.noisy
    assert just_above.noisy


def test_threshold_scales_with_median() -> None:
    # the same relative spread at a thousandth of the scale: same verdicts
    assert not Measurement((3e-3, 0.95e-3, 1e-3, 1.04e-3, 0.5e-3)).noisy
    assert Measurement((3e-3, 0.95e-3, 1e-3, 1.06e-3, 0.5e-3)).noisy


def test_single_and_constant_samples_are_not_noisy() -> None:
    one = Measurement((0.25,))
    assert (one.median_s, one.iqr_s, one.min_s, one.repeats) == (0.25, 0.0, 0.25, 1)
    assert not one.noisy
    flat = Measurement((2.0,) * 6)
    assert flat.iqr_s == 0.0 and not flat.noisy


# --- measure() --------------------------------------------------------------------------------


class Counter:
    """A very fast closure that counts its calls and records whether gc was on."""

    def __init__(self) -> None:
        self.calls = 0
        self.calls_with_gc = 0

    def __call__(self) -> None:
        self.calls += 1
        if gc.isenabled():
            self.calls_with_gc += 1


# Calibration times groups of 10, 100, 1000 ... calls until one is long enough.
CALIBRATION_CALLS = {sum(10**k for k in range(1, j + 1)) for j in range(0, 7)}


def test_min_repeats_honoured_with_zero_budget() -> None:
    fn = Counter()
    m = measure(fn, TimingPolicy(budget_s=0.0, min_repeats=7, limit_s=60.0, min_sample_s=1e-5))
    assert m.repeats == 7
    assert len(m.samples_s) == 7
    # one warm-up call, the calibration groups (10, 100, ... calls), then every sample's calls
    assert fn.calls - 1 - 7 * m.number in CALIBRATION_CALLS


def test_max_repeats_caps_the_samples() -> None:
    fn = Counter()
    m = measure(fn, TimingPolicy(budget_s=0.0, min_repeats=50, limit_s=60.0, min_sample_s=1e-5,
                                 max_repeats=4))
    assert m.repeats == 4


def test_stops_around_budget() -> None:
    fn = Counter()
    policy = TimingPolicy(budget_s=0.1, min_repeats=3, limit_s=60.0, min_sample_s=1e-3)
    start = time.perf_counter()
    m = measure(fn, policy)
    elapsed = time.perf_counter() - start
    assert elapsed >= policy.budget_s
    assert elapsed < policy.budget_s + 1.0  # generous: a loaded machine, never a speed claim
    assert m.repeats >= policy.min_repeats
    # the samples themselves fill (almost all of) the budget
    assert sum(m.samples_s) * m.number >= 0.8 * policy.budget_s
    # every raw sample is kept, and every call is accounted for
    assert len(m.samples_s) == m.repeats
    assert fn.calls - 1 - m.repeats * m.number in CALIBRATION_CALLS
    assert all(s > 0 for s in m.samples_s)


def test_calls_per_sample_calibrated_to_min_sample_s() -> None:
    fn = Counter()
    policy = TimingPolicy(budget_s=0.05, min_repeats=5, limit_s=60.0, min_sample_s=2e-3)
    m = measure(fn, policy)
    assert m.number > 1  # a call costs well under a microsecond: many calls per sample
    assert fn.calls - 1 - m.repeats * m.number in CALIBRATION_CALLS
    durations = [s * m.number for s in m.samples_s]  # wall time of each sample
    # "each sample lasts at least min_sample_s"; half of it leaves room for timer noise
    assert min(durations) >= 0.5 * policy.min_sample_s, (
        f"number={m.number}: samples last {min(durations):.2e}..{max(durations):.2e} s, "
        f"min_sample_s={policy.min_sample_s}"
    )


def test_slow_closure_one_call_per_sample_and_limit() -> None:
    calls = 0

    def slow() -> None:
        nonlocal calls
        calls += 1
        time.sleep(0.05)

    policy = TimingPolicy(budget_s=10.0, min_repeats=100, limit_s=0.12)
    start = time.perf_counter()
    m = measure(slow, policy)
    elapsed = time.perf_counter() - start
    assert m.number == 1  # 50 ms per call is far above min_sample_s
    assert 3 <= m.repeats < 10  # the limit cut it off, far short of min_repeats=100
    assert calls == 1 + m.repeats
    assert all(s >= 0.045 for s in m.samples_s)
    assert elapsed < 2.0


def test_limit_still_takes_three_samples() -> None:
    """Two calls of 60 ms pass a limit of 110 ms between them, each call within it: the series
    goes on to three samples, and is not abandoned (no call passed the limit)."""
    calls = 0

    def slow() -> None:
        nonlocal calls
        calls += 1
        time.sleep(0.06)

    m = measure(slow, TimingPolicy(budget_s=10.0, min_repeats=100, limit_s=0.11))
    assert m.repeats == 3 and not m.abandoned
    assert calls == 4


@pytest.mark.parametrize("enabled", [True, False])
def test_gc_disabled_while_sampling_and_restored(enabled: bool) -> None:
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        fn = Counter()
        measure(fn, TimingPolicy(budget_s=0.0, min_repeats=3, min_sample_s=1e-5))
        assert gc.isenabled() is enabled
        # the warm-up call sees the caller's state; every sampled call sees gc off
        assert fn.calls > 1
        assert fn.calls_with_gc == (1 if enabled else 0)
    finally:
        gc.enable() if was else gc.disable()


def test_gc_restored_when_the_closure_raises() -> None:
    was = gc.isenabled()
    calls = 0

    def fails_third_call() -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("boom")

    try:
        gc.enable()
        with pytest.raises(RuntimeError, match="boom"):
            measure(fails_third_call, TimingPolicy(budget_s=1.0, min_repeats=5,
                                                   min_sample_s=1e-9))
        assert gc.isenabled()
    finally:
        gc.enable() if was else gc.disable()


def test_import_sets_idle_thread_spin_unless_already_set() -> None:
    """`import convbench` shortens OpenBLAS's and libgomp's idle spinning (README, "How time and
    memory are measured") before numpy loads, and leaves a value the user set alone."""
    code = ("import os, convbench, numpy; "
            "print(os.environ['OPENBLAS_THREAD_TIMEOUT'], os.environ['GOMP_SPINCOUNT'])")
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_THREAD_TIMEOUT", "GOMP_SPINCOUNT")}
    fresh = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, check=True)
    assert fresh.stdout.split() == ["20", "10000"]
    mine = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env=env | {"OPENBLAS_THREAD_TIMEOUT": "28"})
    assert mine.stdout.split() == ["28", "10000"]


# --- the case limit, several processes ------------------------------------------------------


def fake_calls(monkeypatch: pytest.MonkeyPatch, per_call_s: dict[object, list[float]]
               ) -> list[object]:
    """Make timing.measure's clock a script: each call of `_time_calls(fn, number)` returns the
    next time per call listed for fn (the last one repeats), and is logged. No real timing."""
    log: list[object] = []

    def time_calls(fn: object, number: int) -> float:
        log.append(fn)
        times = per_call_s[fn]
        return times.pop(0) if len(times) > 1 else times[0]

    monkeypatch.setattr(timing, "_time_calls", time_calls)
    return log


def test_a_sample_past_the_limit_abandons_the_series(monkeypatch: pytest.MonkeyPatch) -> None:
    """limit_s is the case limit on one call: the sample that passes it ends the series, which
    is marked abandoned with its samples kept (the harness records the row as over budget)."""
    fn = object()
    fake_calls(monkeypatch, {fn: [1e-3, 1e-3, 1e-3, 0.5, 0.5, 3.0, 0.5]})
    policy = TimingPolicy(budget_s=1e9, min_repeats=10, limit_s=2.0)
    m = measure(fn, policy, number=1)  # type: ignore[arg-type]
    assert m.abandoned and m.samples_s == (1e-3, 1e-3, 0.5, 0.5, 3.0)
    fn = object()
    fake_calls(monkeypatch, {fn: [1.9]})
    policy = TimingPolicy(budget_s=0.0, min_repeats=3, limit_s=2.0)
    m = measure(fn, policy, number=1)  # type: ignore[arg-type]
    assert not m.abandoned and m.repeats == 3  # under the limit: ok, however slow


def test_interleaved_abandons_one_closure_and_goes_on_with_the_others(
        monkeypatch: pytest.MonkeyPatch) -> None:
    slow, fast = object(), object()
    log = fake_calls(monkeypatch, {slow: [0.1, 0.1, 5.0], fast: [1e-3]})
    policy = TimingPolicy(budget_s=0.0, min_repeats=4, limit_s=1.0)
    a, b = measure_interleaved([slow, fast], policy, numbers=[1, 1])  # type: ignore[list-item]
    assert a.abandoned and a.samples_s == (0.1, 5.0)  # (its warm-up call took 0.1 s, untimed)
    assert not b.abandoned and b.repeats == 4
    # given the calls per sample: one warm-up sample each, then rounds, the slow one left out
    assert log == [slow, fast, slow, fast, fast, slow, fast, fast]


def test_calls_per_sample_of_a_slow_closure_is_one_without_more_runs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fn = object()
    log = fake_calls(monkeypatch, {fn: [0.5]})
    assert calls_per_sample(fn, 2e-3) == 1  # type: ignore[arg-type]
    assert len(log) == 2  # the warm-up call and one run; an interruption only adds time


def test_each_process_takes_its_share_of_the_policy() -> None:
    policy = TimingPolicy(budget_s=0.3, min_repeats=5, limit_s=2.0)
    assert share(policy, 1) is policy
    three = share(policy, 3)
    assert three.budget_s == pytest.approx(0.1) and three.min_repeats == 3
    assert three.limit_s == 2.0  # the case limit is a limit on one call, in every process
    assert share(TimingPolicy(min_repeats=20), 2).min_repeats == 10


def test_merged_measurements_keep_the_process_of_every_sample() -> None:
    own = Measurement((3.0, 1.0), number=7)
    other = Measurement((2.0, 4.0, 5.0), number=7)
    both = Measurement.merged([own, other])
    assert both.samples_s == (3.0, 1.0, 2.0, 4.0, 5.0) and both.number == 7
    assert both.process_of == (0, 0, 1, 1, 1) and both.processes == 2
    assert both.min_s == 1.0 and both.median_s == 3.0
    assert own.processes == 1 and not both.abandoned
    assert Measurement.merged([own, Measurement((9.0,), 7, abandoned=True)]).abandoned
