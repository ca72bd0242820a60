"""This machine's own limits, measured: SGEMM GFLOP/s and memory-copy bandwidth.

Every result can then be read as a fraction of what the machine can do, so a peak measured
while other processes took the CPU would make every later result look too good. The peaks are
therefore measured in rounds, each watched by noise.LoadMonitor, until the best two quiet
rounds agree within AGREE_WITHIN (at least MIN_ROUNDS, at most MAX_ROUNDS). The figures are the
best quiet round's; a measurement without two agreeing quiet rounds is "under load".

Records are cached per machine fingerprint (CPU, cores, BLAS library and kernel, threads) in
the convbench cache directory ($CONVBENCH_CACHE, default ~/.cache/convbench), with their date,
the load seen, the rounds and an expiry (VALID_DAYS); a run copies its record into meta.json.
Only quiet measurements are cached, unless forced (then marked "forced"). `peak_note` says in
one sentence why a record may not be trusted: under load, forced, expired, or not checked.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from convbench.measure.environment import (  # noqa: F401  (cache_dir: machine's API)
    blas,
    cache_dir,
    cpu_info,
    machine_fingerprint,
    usable_cpus,
)
from convbench.measure.noise import OTHER_LOAD_BOUND, LoadMonitor
from convbench.measure.timing import TimingPolicy, measure

SGEMM_SIZE = 2048
COPY_BYTES = 256 * 2**20
ROUND_POLICY = TimingPolicy(budget_s=0.3, min_repeats=3)  # per figure and round
MIN_ROUNDS, MAX_ROUNDS = 3, 5
AGREE_WITHIN = 0.05  # the best two quiet rounds, SGEMM and copy alike
VALID_DAYS = 30

# Records measured under load in this process: not cached, but not measured again by every run.
_UNCACHED: dict[str, dict[str, Any]] = {}


def fingerprint(threads: int) -> str:
    """This machine's id at `threads`: the same hash as a run's meta.json gives
    (environment.machine_fingerprint), so cached peaks and tuning tables match runs."""
    return machine_fingerprint({"cpu": cpu_info(), "threads": threads, "blas": blas()})


def sgemm_gflops(threads: int, size: int = SGEMM_SIZE) -> float:
    """Median float32 GEMM rate of numpy's BLAS on size x size matrices."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    out = np.empty_like(a)
    with threadpool_limits(limits=threads):
        m = measure(lambda: np.matmul(a, b, out=out), ROUND_POLICY)
    return 2 * size**3 / m.median_s / 1e9


def copy_gbytes_per_s(nbytes: int = COPY_BYTES) -> float:
    """Median bandwidth of a large array copy, counting the read and the write."""
    src = np.ones(nbytes // 4, dtype=np.float32)
    dst = np.empty_like(src)
    m = measure(lambda: np.copyto(dst, src), ROUND_POLICY)
    return 2 * nbytes / m.median_s / 1e9


@dataclass(frozen=True)
class PeakRound:
    """One round of the measurement, and the share of the CPU other processes took meanwhile."""

    sgemm_gflops: float
    copy_gbytes_per_s: float
    other_load: float

    @property
    def quiet(self) -> bool:
        return self.other_load <= OTHER_LOAD_BOUND


def measure_round(threads: int) -> PeakRound:
    monitor = LoadMonitor()
    sgemm, copy = sgemm_gflops(threads), copy_gbytes_per_s()
    return PeakRound(sgemm, copy, monitor.stop().other_load)


def best_two_spread(values: list[float]) -> float:
    """How far the second best falls below the best, as a share of the best; inf with < 2."""
    if len(values) < 2:
        return float("inf")
    first, second = sorted(values, reverse=True)[:2]
    return (first - second) / first if first > 0 else float("inf")


def spread(rounds: list[PeakRound]) -> float:
    """The larger best-two spread of the quiet rounds' SGEMM and copy rates."""
    quiet = [r for r in rounds if r.quiet]
    return max(best_two_spread([r.sgemm_gflops for r in quiet]),
               best_two_spread([r.copy_gbytes_per_s for r in quiet]))


def measure_rounds(threads: int, round_fn: Callable[[int], PeakRound] | None = None
                   ) -> list[PeakRound]:
    """Rounds (measure_round's by default) until the best two quiet ones agree
    (MIN_ROUNDS..MAX_ROUNDS)."""
    rounds: list[PeakRound] = []
    while len(rounds) < MAX_ROUNDS:
        rounds.append((round_fn or measure_round)(threads))
        if len(rounds) >= MIN_ROUNDS and spread(rounds) <= AGREE_WITHIN:
            break
    return rounds


def now() -> datetime.datetime:
    """The time, UTC, to the second (what the machine's records say)."""
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def load_warning(rounds: list[PeakRound]) -> str | None:
    """Why these rounds do not make a trusted peak, as a sentence; None if they do."""
    quiet = sum(r.quiet for r in rounds)
    if quiet < 2:
        load = max(r.other_load for r in rounds)
        return (f"other processes used up to {load:.0%} of the CPU capacity: {quiet} of "
                f"{len(rounds)} rounds were quiet (bound {OTHER_LOAD_BOUND:.0%}, 2 needed)")
    if spread(rounds) > AGREE_WITHIN:
        return (f"the best two quiet rounds differed by {spread(rounds):.0%} "
                f"(bound {AGREE_WITHIN:.0%})")
    return None


def peak_record(threads: int, rounds: list[PeakRound]) -> dict[str, Any]:
    """The cached record: the best quiet round's figures (the best round's when none was
    quiet), when and under what load they were measured, and until when they hold."""
    used = [r for r in rounds if r.quiet] or rounds
    measured = now()
    warning = load_warning(rounds)
    return {
        "fingerprint": fingerprint(threads), "threads": threads,
        "sgemm_gflops": max(r.sgemm_gflops for r in used), "sgemm_size": SGEMM_SIZE,
        "copy_gbytes_per_s": max(r.copy_gbytes_per_s for r in used), "copy_bytes": COPY_BYTES,
        "measured_at": measured.isoformat(),
        "expires_at": (measured + datetime.timedelta(days=VALID_DAYS)).isoformat(),
        "other_load": round(sum(r.other_load for r in rounds) / len(rounds), 4),
        "under_load": warning is not None, "warning": warning, "forced": False,
        "rounds": [asdict(r) for r in rounds],
    }


def measure_peaks(threads: int) -> dict[str, Any]:
    return peak_record(threads, measure_rounds(threads))


def cache_path(key: str) -> Path:
    """The cache file of the machine whose fingerprint is `key`."""
    return cache_dir() / f"machine-{key}.json"


def cache_record(path: Path, record: dict[str, Any], force: bool, refusal: str
                 ) -> dict[str, Any]:
    """Write `record` (a measurement of this machine) to `path`; one measured under load only
    when forced, and then marked so; else ValueError(`refusal`). Returns what was written."""
    if record["under_load"] and not force:
        raise ValueError(refusal)
    saved = record | {"forced": bool(record["under_load"])}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(saved, indent=2) + "\n")
    return saved


def save(record: dict[str, Any], force: bool = False) -> dict[str, Any]:
    """Cache `record`; one measured under load only when forced, and then marked so."""
    return cache_record(cache_path(record["fingerprint"]), record, force,
                        f"not caching a peak measured under load: {record.get('warning')}")


def cached(threads: int, key: str | None = None) -> dict[str, Any] | None:
    """The cached record at `threads` (fingerprint `key`), whatever its state; None if none."""
    try:
        return json.loads(cache_path(key or fingerprint(threads)).read_text())
    except (OSError, ValueError):
        return None


def is_expired(record: dict[str, Any], at: datetime.datetime | None = None) -> bool:
    """Past its expiry; a record from before expiries were kept counts as expired."""
    expires = _parse_time(record.get("expires_at"))
    return expires is None or (at or now()) > expires


def peaks(threads: int, remeasure: bool = False) -> dict[str, Any]:
    """The peaks a run uses at `threads`: the cached record unless it is missing, expired or
    `remeasure`; else measured now, and cached when quiet. A measurement under load is kept
    for this process only, and its record says so (under_load, warning)."""
    key = fingerprint(threads)
    current = [] if remeasure else [r for r in (cached(threads, key), _UNCACHED.get(key))
                                    if r is not None and not is_expired(r)]
    if current:
        return current[0]
    record = measure_peaks(threads)
    if record["under_load"]:
        _UNCACHED[record["fingerprint"]] = record
    else:
        save(record)
    return record


def keep(record: dict[str, Any]) -> None:
    """Use `record` in this process as if measured here: the peaks another process of the same
    run measured under load on this machine (a cluster worker's earlier case), so that every
    case's fresh process does not spend seconds measuring them again."""
    if not is_expired(record):
        _UNCACHED[record["fingerprint"]] = record


def _parse_time(text: Any) -> datetime.datetime | None:
    try:
        value = datetime.datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)


def peak_note(record: dict[str, Any], at: datetime.datetime | None = None) -> str | None:
    """Why the record's peak may not be trusted at time `at` (default now), as one phrase:
    "measured 2026-11-30 under load 63% (forced)", "measured 2026-09-01, expired 2026-10-01",
    "measured 2025-06-01, load not checked"; None for a quiet, current record."""
    day = str(record.get("measured_at") or "at an unknown date")[:10]
    if "under_load" not in record:  # cached before the load was checked
        return f"measured {day}, load not checked"
    if record["under_load"]:
        forced = " (forced)" if record.get("forced") else ""
        return f"measured {day} under load {float(record.get('other_load') or 0):.0%}{forced}"
    if is_expired(record, at):
        return f"measured {day}, expired {str(record.get('expires_at'))[:10]}"
    return None
