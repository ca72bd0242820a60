"""This machine's own limits, measured: SGEMM GFLOP/s and memory-copy bandwidth.

Every result can then be read as a fraction of what the machine can do. Measurements are cached
per machine fingerprint (CPU, cores, BLAS library and kernel, threads) in the convbench cache
directory ($CONVBENCH_CACHE, default ~/.cache/convbench) and copied into each run's meta.json.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from convbench.measure.environment import blas, cpu_info, machine_fingerprint
from convbench.measure.timing import TimingPolicy, measure

SGEMM_SIZE = 2048
COPY_BYTES = 256 * 2**20


def cache_dir() -> Path:
    return Path(os.environ.get("CONVBENCH_CACHE") or Path.home() / ".cache" / "convbench")


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
        m = measure(lambda: np.matmul(a, b, out=out), TimingPolicy(budget_s=1.0, min_repeats=5))
    return 2 * size**3 / m.median_s / 1e9


def copy_gbytes_per_s(nbytes: int = COPY_BYTES) -> float:
    """Median bandwidth of a large array copy, counting the read and the write."""
    src = np.ones(nbytes // 4, dtype=np.float32)
    dst = np.empty_like(src)
    m = measure(lambda: np.copyto(dst, src), TimingPolicy(budget_s=1.0, min_repeats=5))
    return 2 * nbytes / m.median_s / 1e9


def measure_peaks(threads: int) -> dict[str, Any]:
    return {
        "fingerprint": fingerprint(threads), "threads": threads,
        "sgemm_gflops": sgemm_gflops(threads), "sgemm_size": SGEMM_SIZE,
        "copy_gbytes_per_s": copy_gbytes_per_s(), "copy_bytes": COPY_BYTES,
        "measured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def peaks(threads: int, remeasure: bool = False) -> dict[str, Any]:
    """The cached peaks of this machine at `threads`, measured now if missing or asked for."""
    path = cache_dir() / f"machine-{fingerprint(threads)}.json"
    if path.exists() and not remeasure:
        return json.loads(path.read_text())
    found = measure_peaks(threads)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(found, indent=2) + "\n")
    return found
