"""Noise discipline: interleaved timing (the order of calls, equal and paired samples), the
harness's --interleave, raw samples persisted beside results.csv, and the noise record."""

from __future__ import annotations

import gc
import json
import time
from pathlib import Path

import pytest

from convbench.measure.noise import LoadMonitor, LoadReading, summarize
from convbench.measure.timing import (
    INTERLEAVED_MIN_SAMPLE_S,
    DeferredTimer,
    TimingPolicy,
    calls_per_sample,
    measure_interleaved,
    round_order,
)
from convbench.run.rundir import noise_warning, read_results, read_samples
from convbench.run.runner import RunOptions, run
from convbench.run.suite import load_suite

SMOKE = load_suite("smoke")


class Logged:
    """A closure that sleeps a little (so that one call makes a sample) and logs its name."""

    def __init__(self, name: str, log: list[str], sleep_s: float = 1.2e-3) -> None:
        self.name, self.log, self.sleep_s = name, log, sleep_s

    def __call__(self) -> None:
        self.log.append(self.name)
        if self.sleep_s:  # sleep(0) is a system call that a busy machine can stretch to 100 us
            time.sleep(self.sleep_s)


def runs_of(log: list[str]) -> list[tuple[str, int]]:
    """Run-length encoding: ["a", "a", "b"] -> [("a", 2), ("b", 1)]."""
    runs: list[tuple[str, int]] = []
    for name in log:
        if runs and runs[-1][0] == name:
            runs[-1] = (name, runs[-1][1] + 1)
        else:
            runs.append((name, 1))
    return runs


def test_round_order_rotates() -> None:
    assert [round_order(r, 3) for r in range(4)] == [[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 1, 2]]
    assert round_order(5, 1) == [0]


def test_calls_per_sample_from_warm_calls() -> None:
    log: list[str] = []
    number = calls_per_sample(Logged("a", log), 12e-3)
    # 1.2 ms a call: a run of one call already lasts a tenth of 12 ms; about ten make a sample
    assert 5 <= number <= 10
    assert log == ["a"] * 4  # the warm-up call, then the run of one call, three times


def test_interleaved_calls_alternate_round_after_round() -> None:
    log: list[str] = []
    fns = [Logged(name, log) for name in "abc"]
    policy = TimingPolicy(budget_s=0.0, min_repeats=4, min_sample_s=1e-3)
    measurements = measure_interleaved(fns, policy)
    assert [m.repeats for m in measurements] == [4, 4, 4]
    numbers = {name: m.number for name, m in zip("abc", measurements)}
    # each sample lasts at least INTERLEAVED_MIN_SAMPLE_S, whatever the policy says
    assert all(n * 1.2e-3 >= 0.5 * INTERLEAVED_MIN_SAMPLE_S for n in numbers.values())
    sampled = log[-4 * sum(numbers.values()):]  # before them: warm-up and calibration
    assert runs_of(log[:-len(sampled)]) == [("a", 4), ("b", 4), ("c", 4)]
    assert runs_of(sampled) == [(name, numbers[name]) for name in "abc" "bca" "cab" "abc"]


def test_interleaved_fast_closures_get_their_own_calls_per_sample() -> None:
    log: list[str] = []
    fns = [Logged("slow", log, 2e-3), Logged("fast", log, 0.0)]
    slow, fast = measure_interleaved(fns, TimingPolicy(budget_s=0.0, min_repeats=3))
    assert slow.number <= 5 and fast.number > 20 * slow.number
    assert slow.repeats == fast.repeats == 3
    # rounds: slow fast | fast slow | slow fast, each sample `number` calls of its closure
    sampled = log[-3 * (slow.number + fast.number):]
    assert runs_of(sampled) == [("slow", slow.number), ("fast", 2 * fast.number),
                                ("slow", 2 * slow.number), ("fast", fast.number)]


def test_interleaved_budget_is_per_closure_and_limit_takes_three_rounds() -> None:
    log: list[str] = []
    fns = [Logged(name, log) for name in "ab"]
    start = time.perf_counter()
    a, b = measure_interleaved(fns, TimingPolicy(budget_s=0.03, min_repeats=2))
    elapsed = time.perf_counter() - start
    assert elapsed >= 0.06 and a.repeats == b.repeats >= 2
    # calls of microseconds, a limit of 1 ms a closure: past it after one round, yet three
    quick = [Logged(name, log, sleep_s=0.0) for name in "ab"]
    capped = measure_interleaved(quick, TimingPolicy(budget_s=10.0, min_repeats=100,
                                                     limit_s=1e-3))
    assert [m.repeats for m in capped] == [3, 3] and not any(m.abandoned for m in capped)


def test_interleaved_timing_turns_gc_off_and_restores_it() -> None:
    seen: list[bool] = []
    was = gc.isenabled()
    try:
        gc.enable()
        (m,) = measure_interleaved([lambda: seen.append(gc.isenabled())],
                                   TimingPolicy(budget_s=0.0, min_repeats=2))
        assert gc.isenabled()
        sampled = 2 * m.number  # calibration with the caller's gc, samples without
        assert all(seen[:-sampled]) and not any(seen[-sampled:])
    finally:
        gc.enable() if was else gc.disable()


def test_deferred_timer_collects_then_measures_together() -> None:
    log: list[str] = []
    deferred = DeferredTimer()
    policy = TimingPolicy(budget_s=0.0, min_repeats=2)
    for key in "xyz":
        placeholder = deferred.timer(key)(Logged(key, log), policy)
        assert placeholder is DeferredTimer.PLACEHOLDER
    deferred.discard("y")
    assert log == []  # nothing ran yet
    measured = deferred.measure_all()
    assert set(measured) == {"x", "z"} and measured["x"].repeats == measured["z"].repeats == 2
    sampled = log[-2 * (measured["x"].number + measured["z"].number):]
    assert [name for name, _ in runs_of(sampled)] == ["x", "z", "x"]  # x z | z x


def test_run_interleave_records_paired_samples(tmp_path: Path) -> None:
    options = RunOptions(algorithms=("direct", "im2col", "torch"), threads=1, interleave=True,
                         budget_s=0.005)
    path = run(SMOKE, tmp_path, options)
    frame = read_results(path)
    assert set(frame["status"]) == {"ok"} and len(frame) == 3 * len(SMOKE.cases)
    samples = read_samples(tmp_path)
    assert len(samples) == len(frame)
    for case, rows in frame.groupby("case"):
        counts = {len(samples[(case, algo, "numpy", "fwd")]) for algo in rows["algo"]}
        assert len(counts) == 1  # one sample of each algorithm per round
        assert set(rows["repeats"]) == counts
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["interleave"] is True
    assert set(meta["noise"]) >= {"other_load", "noisy_rows", "timed_rows", "noisy", "warning"}


def test_samples_are_written_with_their_rows_and_survive_resume(tmp_path: Path) -> None:
    options = RunOptions(algorithms=("im2col",), threads=1, budget_s=0.002)
    run(SMOKE, tmp_path, options)
    first = read_samples(tmp_path)
    frame = read_results(tmp_path)
    assert len(first) == len(frame)
    for _, row in frame.iterrows():
        values = first[(row["case"], "im2col", "numpy", "fwd")]
        assert len(values) == row["repeats"]
        assert min(values) == pytest.approx(row["time_min_s"], rel=1e-5)
    # a resume keeps both files; a line cut short by a kill is skipped
    with (tmp_path / "samples.jsonl").open("a") as handle:
        handle.write('{"case": "tiny_3x3", "algo": "im2col", "backend": "nu')
    run(SMOKE, tmp_path, RunOptions(algorithms=("im2col", "direct"), threads=1,
                                    budget_s=0.002, resume=True))
    resumed = read_samples(tmp_path)
    assert len(resumed) == 2 * len(SMOKE.cases)
    for key, values in first.items():
        assert list(resumed[key]) == list(values)
    run(SMOKE, tmp_path, options)  # a fresh run starts a fresh samples file
    assert len(read_samples(tmp_path)) == len(SMOKE.cases)


def test_noise_summary_and_warning(tmp_path: Path) -> None:
    quiet = summarize(LoadReading(wall_s=10.0, cores=2, other_cpu_s=0.5), 1, 10)
    assert quiet["other_load"] == pytest.approx(0.025) and not quiet["noisy"]
    assert quiet["warning"] is None
    busy = summarize(LoadReading(wall_s=10.0, cores=2, other_cpu_s=8.0), 6, 10)
    assert busy["noisy"]
    assert "other processes used 40% of the CPU" in busy["warning"]
    assert "6 of 10 timed results" in busy["warning"]
    reading = LoadMonitor().stop()
    assert reading.wall_s >= 0 and reading.cores >= 1 and 0 <= reading.other_load
    (tmp_path / "meta.json").write_text(json.dumps({"noise": busy}))
    assert noise_warning(tmp_path) == busy["warning"]
    assert noise_warning(tmp_path / "nowhere") is None
