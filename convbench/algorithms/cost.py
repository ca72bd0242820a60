"""The cost model that algorithms declare their `cost_s` with: each one counts its own stages
(GEMMs, copies, transforms, calls) and this module prices them with one machine's rates.

The rates live in one `MachineModel`, read at every call through the module-level `MACHINE`, so
that they can be replaced (`set_machine`, `priced_by`). `convbench machine` measures them on this
machine at one thread count (convbench.measure.calibrate) and `from_rates` makes the model that
auto prices with (auto.machine_model); without a calibration, DEFAULTS. The harness's skip
bounds keep MACHINE (the defaults unless set): ESTIMATE_SAFETY was measured against them.

The costs rank algorithms for `algo="auto"`; they are realistic, not bounds (a run's skip check
uses the pessimistic `estimate_s`, or a cost times ESTIMATE_SAFETY). The `device_` rates price
the CUDA kernels of the cupy-only algorithms, which auto ranks only on cupy arrays.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class MachineModel:
    """Rates of one machine. Defaults: the project's CPU, 2 Zen-4 cores with numpy's OpenBLAS
    (README: SGEMM 188-196 GFLOP/s at 2048^3; 32-wide GEMMs about 100, 128-wide about 160;
    strided numpy copies 2.5-4 GB/s against about 40 for a contiguous one), and an H100-class
    GPU for the CUDA kernels. Checked against benchmarks/measurements/: on the CPU runs of
    resnet50 and kernels, no two algorithms measured more than 10% apart are ranked the wrong
    way round, and costs are within 12% of the times on average (log scale). On resnet50's
    interleaved runs 4 and 5 (medians of the two), the cheapest candidate by these rates took
    1.006 times the per-layer best (geometric mean over the 23 layers), 1.10 at worst (layer3's
    strided 1x1: im2col for direct); benchmarks/auto_quality.py measures it afresh."""

    gemm_flops_per_s: float = 200e9  # float32 GEMM at large sizes
    gemm_half_size: int = 32  # a GEMM whose smallest side is d runs at d / (d + half) of that
    gemm_call_s: float = 1e-6  # per GEMM of a batch (the BLAS call, its threads' hand-off)
    # The GEMMs that compiled kernels call inside their loops (the fused Winograd arrangement's
    # np.dot, which numba hands to scipy's OpenBLAS) run on an OpenBLAS whatever the GEMM
    # engine: gemm_flops_per_s scaled by numpy's (OpenBLAS) geometric-mean rate over the
    # engine's in the calibration's engine comparison (the large and the narrow GEMMs; at
    # 2048^3 alone the two libraries came within 3%, on the narrow ones numpy's took up to 1.5
    # times torch's time)
    kernel_gemm_flops_per_s: float = 200e9
    copy_bytes_per_s: float = 20e9  # a contiguous copy: bytes written per second
    run_s: float = 5e-9  # per contiguous run of a strided copy (numpy's inner loop)
    transform_flops_per_s: float = 10e9  # FFTs and other arithmetic outside GEMMs
    # numba-compiled loops over contiguous runs (the channels-last Winograd transforms: on
    # ResNet-50's layer1 about 53 MFLOP of F(4,3) input transform in 1.7 ms at 2 threads,
    # writing 14 MB)
    compiled_flops_per_s: float = 50e9
    call_s: float = 5e-6  # per array call: Python, dispatch, allocation
    cache_bytes: int = 1 << 20  # one core's L2 cache
    # A buffer beyond this many bytes is written at spill speed (page faults, memory pressure):
    # im2col's columns past 1 GiB took 3-6x its model on the kernels suite's 128x128 cases.
    resident_bytes: int = 1 << 30
    spill_bytes_per_s: float = 0.75e9
    device_gemm_flops_per_s: float = 60e12  # cuBLAS float32 at large sizes
    device_gemm_half_size: int = 32
    device_bytes_per_s: float = 2e12  # device memory, read plus written
    device_flops_per_s: float = 10e12  # a generated kernel's straight-line arithmetic
    device_loop_flops_per_s: float = 8e12  # a per-thread loop over global memory
    launch_s: float = 5e-6  # per kernel launch


DEFAULTS = MachineModel()
MACHINE = DEFAULTS

# The harness skips a case over its time limit by a pessimistic bound per call: an algorithm's
# declared `estimate_s`, else its `cost_s` times this. The rates above are for 2 threads, runs
# default to one, and the costs are realistic, not bounds: on the measured CPU runs
# (benchmarks/measurements/) the time over the cost reached 2.7 at 2 threads, and FFT on the
# quick suite's layers took 3.3 to 4.8 times its cost on one thread. 8 keeps the rows that run
# at a quarter of their limit or less, so that which rows are skipped follows from the model,
# not from one noisy call (README, "How time and memory are measured").
ESTIMATE_SAFETY = 8.0


def set_machine(model: MachineModel) -> MachineModel:
    """Price every later cost with `model`; returns the one it replaces. Choices auto has
    cached stay until `convbench.algorithms.auto.forget()`."""
    global MACHINE
    old, MACHINE = MACHINE, model
    return old


@contextlib.contextmanager
def priced_by(model: MachineModel) -> Iterator[MachineModel]:
    """Price every cost inside the block with `model`, then the model before it again."""
    old = set_machine(model)
    try:
        yield model
    finally:
        set_machine(old)


def from_rates(rates: dict[str, Any], base: MachineModel = DEFAULTS) -> MachineModel:
    """`base` with the rates in `rates` (MachineModel field names) in place of its own: a
    calibration's record. Raises ValueError for an unknown name or a rate that is not a positive
    finite number, so that a damaged record is never half used."""
    known = {f.name: f.type for f in fields(MachineModel)}
    unknown = sorted(set(rates) - set(known))
    if unknown:
        raise ValueError(f"unknown rates {', '.join(unknown)}")
    bad = sorted(k for k, v in rates.items() if not _positive_finite(v))
    if bad:
        raise ValueError(f"rates not positive and finite: {', '.join(bad)}")
    if "gemm_flops_per_s" in rates and "kernel_gemm_flops_per_s" not in rates:
        # a record from before the field: the kernels' GEMMs priced as the model priced
        # them then, at the GEMM rate it measured (not at the defaults' rate)
        rates = {**rates, "kernel_gemm_flops_per_s": rates["gemm_flops_per_s"]}
    return replace(base, **{k: int(v) if known[k] == "int" else float(v)
                            for k, v in rates.items()})


def _positive_finite(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


def gemm_s(m: int, n: int, k: int, itemsize: int, batch: int = 1,
           complex_values: bool = False, peak: float | None = None) -> float:
    """`batch` GEMMs (m x k) @ (k x n) of `itemsize` items, and their results written;
    complex ones do four real products per product. `peak`: the large-GEMM rate of the
    library that runs them (default: the GEMM engine's, gemm_flops_per_s)."""
    flops = 2 * m * n * k * (4 if complex_values else 1)
    smallest = min(m, n, k)
    rate = (peak or MACHINE.gemm_flops_per_s) * smallest / (smallest + MACHINE.gemm_half_size)
    return batch * (flops / rate + MACHINE.gemm_call_s) + copy_s(batch * m * n, itemsize)


def copy_s(elements: int, itemsize: int, run: int | None = None) -> float:
    """Writing `elements` items; a strided copy (a gather, a permutation) pays for each of its
    contiguous runs of `run` items, a contiguous one (run None) only for the bytes."""
    runs = 0 if run is None else math.ceil(elements / max(run, 1))
    return elements * itemsize / MACHINE.copy_bytes_per_s + runs * MACHINE.run_s


def oversize_s(nbytes: int) -> float:
    """The extra time of writing one buffer of `nbytes`, for its bytes beyond the resident size."""
    return max(0, nbytes - MACHINE.resident_bytes) / MACHINE.spill_bytes_per_s


def padding_s(p: Any) -> float:
    """Zero-padding a convolution's input (windows.pad): the padded array written, the input
    copied into it row by row; nothing without padding."""
    if not any(p.padding) and not any(p.padding_after):
        return 0.0
    padded = p.n * p.c * math.prod(s + b + e for s, b, e in zip(p.size, p.padding,
                                                                  p.padding_after))
    inputs = p.n * p.c * math.prod(p.size)
    return copy_s(padded, p.itemsize) + copy_s(inputs, p.itemsize, p.size[-1])


def fft_s(points: int, transforms: int) -> float:
    """`transforms` real FFTs of `points` points each (2.5 N log2 N flops, as FFTW counts)."""
    flops = 2.5 * points * math.log2(max(points, 2)) * transforms
    return flops / MACHINE.transform_flops_per_s


def transform_s(flops: float) -> float:
    """Arithmetic outside GEMMs (elementwise products, per-pixel loops)."""
    return flops / MACHINE.transform_flops_per_s


def kernel_loop_s(flops: float) -> float:
    """Arithmetic in a compiled CPU kernel's vectorised loops (backends/compiled.py)."""
    return flops / MACHINE.compiled_flops_per_s


def transpose_s(elements: int, itemsize: int) -> float:
    """A compiled blocked transpose (NCHW to NHWC and back): the bytes written, and a scalar
    load and store per element in the kernel's loops (about 16 flops' time each: ResNet-50's
    layer1 input, 1.6 M values, took 0.87 ms on 2 threads)."""
    return copy_s(elements, itemsize) + kernel_loop_s(16 * elements)


def calls_s(count: int) -> float:
    """`count` array-library calls, whatever they compute."""
    return count * MACHINE.call_s


def device_gemm_s(m: int, n: int, k: int, itemsize: int, batch: int = 1) -> float:
    """`batch` GEMMs (m x k) @ (k x n) in one cuBLAS call: its arithmetic or its operands'
    traffic, whichever bounds it."""
    smallest = min(m, n, k)
    rate = MACHINE.device_gemm_flops_per_s * smallest / (smallest + MACHINE.device_gemm_half_size)
    nbytes = batch * (m * k + k * n + m * n) * itemsize
    return max(2 * m * n * k * batch / rate, nbytes / MACHINE.device_bytes_per_s) \
        + MACHINE.launch_s


def kernel_s(flops: float, nbytes: float, looped: bool = False) -> float:
    """One generated kernel: its arithmetic (straight-line, or in per-thread loops over global
    memory) or its memory traffic, whichever bounds it."""
    rate = MACHINE.device_loop_flops_per_s if looped else MACHINE.device_flops_per_s
    return max(flops / rate, nbytes / MACHINE.device_bytes_per_s) + MACHINE.launch_s
