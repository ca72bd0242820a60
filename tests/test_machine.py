"""The machine's peaks: threads checked against the CPUs this process may use, rounds until the
best two quiet ones agree, no cache of a measurement under load unless forced (and then marked),
expiry, the one-line notes, and `convbench machine` with --show, --cached and --force. The
measuring functions are replaced by ones that return chosen numbers, and the load by a fake
one, except in the one test that loads the machine for real."""

from __future__ import annotations

import datetime
import functools
import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from convbench.cli import EXIT_OK, EXIT_USAGE, EXIT_WRONG, main
from convbench.measure import calibrate, machine, noise
from convbench.measure.machine import PeakRound


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache of this test's own, and nothing kept in memory from other tests."""
    monkeypatch.setenv("CONVBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(machine, "_UNCACHED", {})
    monkeypatch.setattr(calibrate, "rates", lambda threads: dict(CALIBRATED))
    return tmp_path / "cache"


CALIBRATED = {"gemm_flops_per_s": 190e9, "gemm_half_size": 20, "gemm_call_s": 5e-8,
              "copy_bytes_per_s": 10e9, "run_s": 4e-9, "transform_flops_per_s": 3e9,
              "call_s": 1e-6, "cache_bytes": 1 << 20}


def rounds_of(*figures: tuple[float, float, float]) -> Iterator[PeakRound]:
    return iter(PeakRound(*f) for f in figures)


def fake_rounds(monkeypatch: pytest.MonkeyPatch, *figures: tuple[float, float, float]
                ) -> list[int]:
    """measure_round returns these (SGEMM, copy, other load) rounds in turn, over and over;
    returns the threads of each call."""
    calls: list[int] = []
    values = list(figures)

    def round_fn(threads: int) -> PeakRound:
        calls.append(threads)
        return PeakRound(*values[(len(calls) - 1) % len(values)])

    monkeypatch.setattr(machine, "measure_round", round_fn)
    return calls


QUIET = [(190.0, 20.0, 0.02), (150.0, 19.0, 0.03), (195.0, 20.5, 0.01)]
BUSY = [(52.0, 9.0, 0.6), (70.0, 11.0, 0.6), (61.0, 10.0, 0.6)]


def test_usable_cpus_is_the_affinity_else_the_cpu_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine.os, "sched_getaffinity", lambda pid: {3}, raising=False)
    assert machine.usable_cpus() == 1
    monkeypatch.delattr(machine.os, "sched_getaffinity")
    monkeypatch.setattr(machine.os, "cpu_count", lambda: 7)
    assert machine.usable_cpus() == 7


def test_threads_beyond_the_usable_cpus_are_refused(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        own_cache: Path) -> None:
    calls = fake_rounds(monkeypatch, *QUIET)
    monkeypatch.setattr(machine, "usable_cpus", lambda: 2)
    assert main(["machine", "--threads", "64"]) == EXIT_USAGE
    err = " ".join(capsys.readouterr().err.split())
    assert err == "convbench: error: --threads 64 is more than the 2 CPUs this process may use"
    assert calls == [] and not own_cache.exists()  # nothing measured, nothing cached
    assert main(["machine", "--threads", "2"]) == EXIT_OK and set(calls) == {2}


def test_rounds_go_on_until_the_best_two_quiet_ones_agree(
        monkeypatch: pytest.MonkeyPatch) -> None:
    iterator = rounds_of((52.0, 9.0, 0.6), *QUIET)  # a busy round first: not in the figures
    rounds = machine.measure_rounds(1, lambda t: next(iterator))
    assert len(rounds) == 4  # 190 and 150 disagree; 195 agrees with 190 within 5%
    record = machine.peak_record(1, rounds)
    assert record["sgemm_gflops"] == 195.0 and record["copy_gbytes_per_s"] == 20.5
    assert not record["under_load"] and record["warning"] is None
    assert record["other_load"] == pytest.approx((0.6 + 0.02 + 0.03 + 0.01) / 4, abs=1e-4)
    assert [r["sgemm_gflops"] for r in record["rounds"]] == [52.0, 190.0, 150.0, 195.0]


def test_a_measurement_under_load_is_not_cached_unless_forced(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        own_cache: Path) -> None:
    calls = fake_rounds(monkeypatch, *BUSY)
    assert main(["machine", "--threads", "1"]) == EXIT_WRONG
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())
    assert len(calls) == machine.MAX_ROUNDS  # it kept trying for a quiet moment
    assert err.startswith("convbench: error: not cached: other processes used up to 60%")
    assert "pass --force" in err and not own_cache.exists()
    assert main(["machine", "--threads", "1", "--force"]) == EXIT_OK
    (path,) = own_cache.glob("machine-*.json")
    record = json.loads(path.read_text())
    assert record["under_load"] and record["forced"] and record["sgemm_gflops"] == 70.0
    assert main(["machine", "--threads", "1", "--show"]) == EXIT_OK
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    shown = " ".join(capsys.readouterr().out.split())
    assert f"peak measured {today} under load 60% (forced)" in shown


def test_a_real_busy_machine_makes_the_measurement_loaded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Busy loops on every usable CPU while the real rounds (small sizes) run."""
    monkeypatch.setattr(machine, "sgemm_gflops", functools.partial(machine.sgemm_gflops,
                                                                   size=256))
    monkeypatch.setattr(machine, "copy_gbytes_per_s", functools.partial(
        machine.copy_gbytes_per_s, nbytes=4 * 2**20))
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(machine.usable_cpus())]
    try:
        record = machine.measure_peaks(1)
    finally:
        for process in busy:
            process.kill()
            process.wait()
    assert record["under_load"] and record["other_load"] > noise.OTHER_LOAD_BOUND
    assert "of the CPU capacity" in record["warning"]


def test_a_fake_busy_load_is_seen_by_the_round(monkeypatch: pytest.MonkeyPatch) -> None:
    """The load monitor's counters as a machine whose other processes take 80% of every core
    would show them: 10 s pass between start and stop, others spend 8 CPU-s per core."""
    cores = noise.usable_cpus()
    monkeypatch.setattr(noise.time, "monotonic", itertools.count(0.0, 10.0).__next__)
    monkeypatch.setattr(noise, "_busy_s", itertools.count(0.0, 8.0 * cores).__next__)
    monkeypatch.setattr(noise, "_own_s", lambda: 0.0)
    monkeypatch.setattr(machine, "sgemm_gflops", lambda threads: 150.0)
    monkeypatch.setattr(machine, "copy_gbytes_per_s", lambda: 20.0)
    one = machine.measure_round(1)
    assert one == PeakRound(150.0, 20.0, pytest.approx(0.8)) and not one.quiet


def test_runs_measure_under_load_once_and_cache_nothing(
        monkeypatch: pytest.MonkeyPatch, own_cache: Path) -> None:
    calls = fake_rounds(monkeypatch, *BUSY)
    first = machine.peaks(1)
    assert first["under_load"] and not own_cache.exists()
    assert machine.peaks(1) is first and len(calls) == machine.MAX_ROUNDS  # kept in memory
    assert machine.peak_note(first).endswith("under load 60%")


def test_a_quiet_measurement_is_cached_and_reused_until_it_expires(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_rounds(monkeypatch, *QUIET)
    first = machine.peaks(1)
    assert not first["under_load"] and machine.peak_note(first) is None
    assert machine.peaks(1) == first and len(calls) == 3  # cached
    expired = first | {"expires_at": "2020-01-31T00:00:00+00:00"}
    machine.cache_path(first["fingerprint"]).write_text(json.dumps(expired))
    assert machine.peak_note(expired) == f"measured {first['measured_at'][:10]}, expired " \
        "2020-01-31"
    assert machine.peaks(1)["expires_at"] > first["measured_at"] and len(calls) == 6


def test_a_record_from_before_the_load_check_is_measured_again(
        monkeypatch: pytest.MonkeyPatch, own_cache: Path) -> None:
    calls = fake_rounds(monkeypatch, *QUIET)
    old = {"fingerprint": machine.fingerprint(1), "threads": 1, "sgemm_gflops": 52.0,
           "copy_gbytes_per_s": 7.0, "measured_at": "2026-11-01T10:00:00+00:00"}
    own_cache.mkdir()
    machine.cache_path(old["fingerprint"]).write_text(json.dumps(old))
    assert machine.peak_note(old) == "measured 2026-11-01, load not checked"
    assert machine.peaks(1)["sgemm_gflops"] == 195.0 and len(calls) == 3


def test_show_and_cached(monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    calls = fake_rounds(monkeypatch, *QUIET)
    assert main(["machine", "--threads", "1", "--show"]) == EXIT_OK
    assert "not measured" in capsys.readouterr().out and calls == []
    assert main(["machine", "--threads", "1", "--cached"]) == EXIT_OK  # measures: none cached
    assert main(["machine", "--threads", "1", "--cached"]) == EXIT_OK  # reads the cache
    out = " ".join(capsys.readouterr().out.split())
    assert len(calls) == 3 and "SGEMM (2048^3, 1 threads): 195.0 GFLOP/s" in out
    assert "quiet (other processes 2%), valid until" in out
