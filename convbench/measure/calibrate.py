"""The cost model's rates, measured on this machine at one thread count (`convbench machine`).

`algo="auto"` ranks algorithms by the stages each declares (convbench.algorithms.cost), priced
with a machine's rates. The defaults there are one machine's; this module measures the same
rates here, in a few seconds, with the primitives the algorithms are made of:

- the GEMM engine: the large float32 GEMM and the narrow ones (below) by numpy and by torch
  (zero-copy on the same arrays), interleaved; torch's is picked when the geometric mean of
  its rates is PICK_MARGIN above numpy's (convbench.backends.gemm runs large products of numpy
  arrays by it), and the GEMM rates below are from the picked engine's samples; each engine's
  own GEMM rates are kept beside them (`engine_gemm_rates`, read by `rates_for`), for a run
  that sets the other engine;
- gemm_flops_per_s: a large float32 GEMM (GEMM_SIZE^3);
- gemm_half_size: the narrow GEMMs' fall-off, fitted from batched GEMMs whose smallest side d
  is 32 to 256 (Winograd's channel GEMMs, im2col's on small images): each shape's time, less
  its calls and its result's write, gives its rate, and rate = peak * d / (d + half) its half;
  the median over the shapes;
- gemm_call_s: per GEMM of a batch of tiny ones;
- kernel_gemm_flops_per_s: the rate of the GEMMs that compiled kernels call themselves
  (numba's np.dot: scipy's OpenBLAS, whatever the engine): gemm_flops_per_s times numpy's
  (OpenBLAS) geometric-mean rate over the picked engine's, over the large and the narrow GEMMs
  of the engine comparison;
- copy_bytes_per_s: a contiguous copy of COPY_BYTES, bytes written per second;
- run_s: per contiguous run of a strided copy (runs of 7 to 56 items, numpy's inner loop), what
  the copy takes beyond its bytes at the contiguous rate;
- transform_flops_per_s: real 2-D FFTs (2.5 N log2 N flops each), as FFT convolution calls them;
- call_s: per array call (an allocation, a reshape, a tiny product);
- the rates of `extra`, measured by the layer that owns what they time: compiled_flops_per_s,
  the compiled kernels' loops (winograd_nhwc_kernels.loop_rate, which
  convbench.algorithms.auto.calibrate passes; left at the default where the kernels are off);
- cache_bytes: the L2 cache of one core, read from the OS (sysfs), not timed.

Each figure is from the fastest of its samples (timing.measure): on a machine that other
processes share, a preempted sample is slower, never faster. Other processes' load is watched
(noise.LoadMonitor) and recorded; the command caches a record measured under load only when
forced, as it does the peaks. The record is cached beside the
peaks, per machine fingerprint and threads, as `model-FINGERPRINT.json`; `load` reads it back
and says in a sentence why it cannot be used (missing, unreadable, another machine, damaged).
This module measures and stores; convbench.algorithms.cost turns the rates into a model.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from convbench.measure.machine import SGEMM_SIZE, cache_dir, cache_record, fingerprint, now
from convbench.measure.noise import OTHER_LOAD_BOUND, LoadMonitor
from convbench.measure.timing import TimingPolicy, measure, measure_interleaved

POLICY = TimingPolicy(budget_s=0.15, min_repeats=5)
# The GEMMs' interleaved rounds: more of them, so that the fastest sample of each shape is more
# likely one that no other process interrupted (about 1 s on a quiet machine).
GEMM_ROUNDS = TimingPolicy(budget_s=0.1, min_repeats=10)
GEMM_SIZE = SGEMM_SIZE  # the peak's GEMM
# The GEMM engine (convbench.backends.gemm) is torch's only when its rate (engine_rates) is
# this much above numpy's.
PICK_MARGIN = 0.05
# (batch, m, k, n): narrow GEMMs as the fast algorithms issue them. m = k = channels, n = the
# tiles or pixels, the smallest side (Winograd F(4,3) on a 7x7 image at N=8 has 32 tiles).
NARROW_GEMMS = ((36, 256, 256, 32), (16, 256, 256, 64), (16, 256, 256, 128),
                (8, 256, 256, 256), (4, 512, 512, 32), (4, 512, 512, 128))
TINY_GEMMS = (4096, 4)  # batch, side
COPY_BYTES = 8 * 2**20  # a layer's tensors at N=8: a few MiB, beyond L2, within L3
RUNS = (7, 14, 28, 56)  # items per run: a 7x7 to 56x56 image's rows
FFT_SHAPES = ((512, 16, 16), (128, 32, 32), (32, 64, 64))  # transforms, height, width
# A rate measured by the layer that owns what it times (the compiled kernels' loops, measured
# by convbench.algorithms): (copy rate, threads) -> the rate, or None where it does not apply.
Rate = Callable[[float, int], "float | None"]


def fastest_s(fn: Callable[[], object]) -> float:
    """The fastest sample of `fn` under POLICY."""
    return measure(fn, POLICY).min_s


def _gemm(batch: int, m: int, k: int, n: int, engine: str = "numpy") -> Callable[[], object]:
    """One float32 GEMM of numpy arrays by `engine`: numpy's matmul, or torch's on zero-copy
    views of the same arrays (as convbench.backends.gemm runs it)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((batch, m, k), dtype=np.float32)
    b = rng.standard_normal((batch, k, n), dtype=np.float32)
    out = np.empty((batch, m, n), dtype=np.float32)
    if engine == "torch":
        import torch

        ta, tb, tout = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out)
        return lambda: torch.matmul(ta, tb, out=tout)
    return lambda: np.matmul(a, b, out=out)


def gemm_shapes() -> tuple[tuple[int, int, int, int], ...]:
    """(batch, m, k, n): the large GEMM, then NARROW_GEMMS."""
    return ((1, GEMM_SIZE, GEMM_SIZE, GEMM_SIZE), *NARROW_GEMMS)


def installed_engines() -> list[str]:
    """numpy, and torch where it is installed."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return ["numpy"]
    return ["numpy", "torch"]


def gemm_times_s(threads: int, engines: list[str] | None = None) -> dict[str, list[float]]:
    """Per engine (default numpy), the fastest sample of the large GEMM, then of each
    NARROW_GEMMS shape, all timed in the same interleaved rounds at `threads` (torch's intra-op
    pool set to them for the duration): the fall-off is fitted, and the engines compared, from
    figures taken under the same load."""
    engines = engines or ["numpy"]
    shapes = gemm_shapes()
    torch = __import__("torch") if "torch" in engines else None
    previous = torch.get_num_threads() if torch else None
    try:
        if torch:
            torch.set_num_threads(threads)
        fns = [_gemm(*shape, e) for e in engines for shape in shapes]
        times = [m.min_s for m in measure_interleaved(fns, GEMM_ROUNDS)]
    finally:
        if torch:
            torch.set_num_threads(previous)
    return {e: times[i * len(shapes):(i + 1) * len(shapes)] for i, e in enumerate(engines)}


def engine_rates(times_s: dict[str, list[float]]) -> dict[str, float]:
    """Each engine's GEMM rate from its gemm_times_s: the geometric mean of its FLOP/s over the
    large GEMM and NARROW_GEMMS (the shapes the fast algorithms issue). At 2048^3 alone the two
    libraries came within 2-5% of each other on this project's machine, the pick flipping
    between calibrations, where on the algorithms' own shapes torch's took 0.75-0.9 of numpy's
    time."""
    shapes = gemm_shapes()
    flops = [2 * batch * m * k * n for batch, m, k, n in shapes]
    return {engine: statistics.geometric_mean(f / t for f, t in zip(flops, times, strict=True))
            for engine, times in times_s.items()}


def narrow_halves(peak: float, call_s: float, copy_rate: float, times_s: list[float]
                  ) -> list[float]:
    """Each NARROW_GEMMS shape's half size: its rate with the calls and the result's write taken
    off, set in rate = peak * d / (d + half)."""
    halves = []
    for (batch, m, k, n), time_s in zip(NARROW_GEMMS, times_s, strict=True):
        arithmetic_s = time_s - batch * call_s - batch * m * n * 4 / copy_rate
        rate = 2 * m * n * k * batch / max(arithmetic_s, 1e-12)
        halves.append(max(min(m, n, k) * (peak / rate - 1), 1.0))
    return halves


def copy_bytes_per_s(nbytes: int = COPY_BYTES) -> float:
    src = np.ones(nbytes // 4, dtype=np.float32)
    dst = np.empty_like(src)
    return nbytes / fastest_s(lambda: np.copyto(dst, src))


def gemm_call_s(peak: float, batch: int = TINY_GEMMS[0], side: int = TINY_GEMMS[1]) -> float:
    a = np.ones((batch, side, side), dtype=np.float32)
    time_s = fastest_s(lambda: np.matmul(a, a))
    return max(time_s / batch - 2 * side**3 / peak, 1e-9)


def run_s(copy_rate: float, nbytes: int = COPY_BYTES) -> float:
    """Per run of a strided copy: the copy's time beyond its bytes, over its runs (median)."""
    per_run = []
    for run in RUNS:
        rows = nbytes // 4 // run
        src = np.ones((rows, run + 1), dtype=np.float32)[:, :run]  # runs of `run`, a gap each
        dst = np.empty((rows, run), dtype=np.float32)
        time_s = fastest_s(lambda: np.copyto(dst, src))
        per_run.append((time_s - nbytes / copy_rate) / rows)
    return max(statistics.median(per_run), 1e-11)


def transform_flops_per_s() -> float:
    rates = []
    for transforms, h, w in FFT_SHAPES:
        x = np.ones((transforms, h, w), dtype=np.float32)
        time_s = fastest_s(lambda: np.fft.rfftn(x, axes=(-2, -1)))
        rates.append(2.5 * h * w * math.log2(h * w) * transforms / time_s)
    return statistics.median(rates)


def call_s() -> float:
    """Per array call: the median of a few calls that do next to no arithmetic."""
    a = np.ones((4, 4), dtype=np.float32)
    calls = (lambda: np.empty((4, 4), dtype=np.float32), lambda: np.reshape(a, (16,)),
             lambda: np.ascontiguousarray(a.T), lambda: a @ a)
    return statistics.median(fastest_s(fn) for fn in calls)


def l2_cache_bytes(cpu: int = 0) -> int | None:
    """One core's L2 cache, from sysfs (Linux); None where the OS does not say."""
    for index in sorted(Path(f"/sys/devices/system/cpu/cpu{cpu}/cache").glob("index*")):
        try:
            if (index / "level").read_text().strip() == "2":
                size = (index / "size").read_text().strip().upper()
                scale = {"K": 1 << 10, "M": 1 << 20}.get(size[-1:], 1)
                return int(size.rstrip("KM")) * scale
        except (OSError, ValueError):
            continue
    return None


def rates(threads: int, extra: dict[str, Rate] | None = None,
          gemm_s: list[float] | None = None) -> dict[str, float]:
    """Every rate, measured at `threads` (MachineModel's field names), the GEMMs' from `gemm_s`
    (one engine's gemm_times_s; default: numpy's, timed now), and each of `extra` where it
    applies."""
    with threadpool_limits(limits=threads):
        times_s = gemm_s or gemm_times_s(threads)["numpy"]
        copy_rate = copy_bytes_per_s()
        per_gemm = gemm_call_s(2 * GEMM_SIZE**3 / times_s[0])  # at the large GEMM's rate
        measured = {
            "copy_bytes_per_s": copy_rate, "gemm_call_s": per_gemm, "run_s": run_s(copy_rate),
            "transform_flops_per_s": transform_flops_per_s(), "call_s": call_s(),
        }
        measured |= engine_gemm_rates(times_s, measured)  # the GEMMs' own, as for every engine
        for name, rate in (extra or {}).items():
            value = rate(copy_rate, threads)
            if value is not None:
                measured[name] = value
    cache = l2_cache_bytes()
    return measured | ({"cache_bytes": cache} if cache else {})


ENGINE_GEMM_RATES = ("gemm_flops_per_s", "gemm_half_size")  # what differs by engine


def engine_gemm_rates(times_s: list[float], measured: dict[str, float]) -> dict[str, float]:
    """One engine's GEMM rates (gemm_flops_per_s, gemm_half_size) from its gemm_times_s, fitted
    as `rates` fits the picked engine's, with `measured`'s call and copy rates."""
    large_s, *narrow_s = times_s
    peak = 2 * GEMM_SIZE**3 / large_s
    halves = narrow_halves(peak, measured["gemm_call_s"], measured["copy_bytes_per_s"],
                           narrow_s)
    return {"gemm_flops_per_s": peak, "gemm_half_size": statistics.median(halves)}


def rates_for(record: dict[str, Any], engine: str) -> tuple[dict[str, Any], str]:
    """(a record's rates for GEMMs by `engine`, a phrase on them): its rates as measured, with
    the GEMM rates of `engine` in place of the picked engine's where the two differ and the
    record has them (a run that sets CONVBENCH_GEMM to the other engine is priced for the
    GEMMs it runs); a record without them keeps its own, and says so."""
    measured, picked = record["rates"], record.get("gemm_engine", "numpy")
    if engine == picked:
        return measured, ""
    by_engine = record.get("engine_gemm_rates")
    own = by_engine.get(engine) if isinstance(by_engine, dict) else None
    if not isinstance(own, dict):
        return measured, f", GEMMs priced at the {picked} engine's rates"
    rates = {k: own[k] for k in ENGINE_GEMM_RATES if k in own}  # only the GEMMs' own
    return {**measured, **rates}, f", GEMMs at the {engine} engine's rates"


def pick_engine(engines: dict[str, float]) -> str:
    """The GEMM engine a calibration records, from each engine's rate (engine_rates): torch only
    when it is PICK_MARGIN faster than numpy (a tie keeps one library for everything)."""
    if engines.get("torch", 0.0) > engines["numpy"] * (1 + PICK_MARGIN):
        return "torch"
    return "numpy"


def calibrate(threads: int, extra: dict[str, Rate] | None = None) -> dict[str, Any]:
    """The record to cache: the GEMM engine (the faster library's, convbench.backends.gemm)
    and each engine's rate (engine_rates); the rates (`extra` among them), the GEMMs' by that
    engine; the threads, when, and how long it took."""
    start, monitor = time.perf_counter(), LoadMonitor()
    with threadpool_limits(limits=threads):
        times_s = gemm_times_s(threads, installed_engines())
    engines = engine_rates(times_s)
    engine = pick_engine(engines)
    measured = rates(threads, extra, times_s[engine])
    # the compiled kernels' own GEMMs run on scipy's OpenBLAS, whichever engine is picked: the
    # engine's large-GEMM rate scaled by numpy's OpenBLAS's share of it over the large and
    # narrow GEMMs
    measured["kernel_gemm_flops_per_s"] = (measured["gemm_flops_per_s"] * engines["numpy"]
                                           / engines[engine])
    load = monitor.stop().other_load
    return {"fingerprint": fingerprint(threads), "threads": threads, "rates": measured,
            "gemm_engine": engine, "gemm_engines_flops_per_s": engines,
            "engine_gemm_rates": {e: engine_gemm_rates(times, measured)
                                  for e, times in times_s.items()},
            "measured_at": now().isoformat(), "took_s": round(time.perf_counter() - start, 2),
            "other_load": round(load, 4), "under_load": load > OTHER_LOAD_BOUND}


def model_path(threads: int, key: str | None = None) -> Path:
    return cache_dir() / f"model-{key or fingerprint(threads)}.json"


def save(record: dict[str, Any], force: bool = False) -> Path:
    """Cache `record`; one measured under load only when forced, and then marked so."""
    path = model_path(record["threads"], record["fingerprint"])
    cache_record(path, record, force, f"not caching a calibration measured while other "
                 f"processes took {record['other_load']:.0%} of the CPU (bound "
                 f"{OTHER_LOAD_BOUND:.0%})")
    return path


def load(threads: int) -> tuple[dict[str, Any] | None, str]:
    """(the cached record at `threads`, where it came from) or (None, why there is none)."""
    key = fingerprint(threads)
    path = model_path(threads, key)
    if not path.exists():
        return None, f"no calibration for this machine at {threads} threads ({path.name})"
    try:
        record = json.loads(path.read_text())
        rates_found = record["rates"]
        if record.get("fingerprint") != key or not isinstance(rates_found, dict):
            raise ValueError("another machine's record")
    except (OSError, ValueError, KeyError, TypeError) as error:
        return None, f"calibration {path.name} unreadable: {error}"
    return record, f"calibrated {str(record.get('measured_at'))[:10]} ({path.name})"
