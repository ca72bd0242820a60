"""Timing and memory on CUDA devices, for the torch-cuda and cupy backends.

Timing as triton's do_bench: warm-up, then per call an L2 flush (writing a buffer twice the L2
size), a CUDA event before and after, and the elapsed time read after synchronising; samples are
taken until the budget and the minimum count are met, and summarised like CPU samples.
Memory from the framework's allocator: torch's peak-allocated counter, and for cupy a memory
hook that follows the pool's allocations; as on the CPU, the peak above the call's start less
the output.
"""

from __future__ import annotations

import importlib
import time
import warnings
from collections.abc import Callable
from typing import Any

from convbench.measure.memory import MemoryReading, output_nbytes
from convbench.measure.timing import Measurement, TimingPolicy


class _Device:
    """The few device calls timing needs, for one library."""

    def __init__(self, library: str) -> None:
        self.library = library
        self.lib = importlib.import_module(library)

    def synchronize(self) -> None:
        if self.library == "torch":
            self.lib.cuda.synchronize()
        else:
            self.lib.cuda.Device().synchronize()

    def event(self) -> Any:
        if self.library == "torch":
            return self.lib.cuda.Event(enable_timing=True)
        return self.lib.cuda.Event()

    def elapsed_s(self, start: Any, end: Any) -> float:
        if self.library == "torch":
            return start.elapsed_time(end) / 1e3
        return self.lib.cuda.get_elapsed_time(start, end) / 1e3

    def l2_bytes(self) -> int:
        if self.library == "torch":
            return int(self.lib.cuda.get_device_properties(0).L2_cache_size)
        return int(self.lib.cuda.runtime.getDeviceProperties(0)["l2CacheSize"])

    def flush_buffer(self) -> Any:
        count = max(2 * self.l2_bytes(), 64 * 2**20) // 4
        if self.library == "torch":
            return self.lib.empty(count, dtype=self.lib.float32, device="cuda")
        return self.lib.empty(count, dtype=self.lib.float32)


def _flush(buffer: Any) -> None:
    buffer.zero_() if hasattr(buffer, "zero_") else buffer.fill(0)


def measure_cuda(library: str) -> Callable[[Callable[[], object], TimingPolicy], Measurement]:
    """A timer for closures that launch work on the current CUDA device."""
    device = _Device(library)

    def timer(fn: Callable[[], object], policy: TimingPolicy) -> Measurement:
        flush, samples = device.flush_buffer(), []
        fn()
        device.synchronize()
        start_wall = time.perf_counter()
        while len(samples) < policy.max_repeats:
            elapsed = time.perf_counter() - start_wall
            if (elapsed >= policy.budget_s and len(samples) >= policy.min_repeats) or (
                    elapsed >= policy.limit_s and len(samples) >= 3):
                break
            _flush(flush)
            start, end = device.event(), device.event()
            start.record()
            fn()
            end.record()
            end.synchronize()
            samples.append(device.elapsed_s(start, end))
        return Measurement(tuple(samples), 1)

    return timer


def is_out_of_memory(error: BaseException) -> bool:
    """MemoryError on the host, or a CUDA allocator's out-of-memory (torch's and cupy's are both
    named OutOfMemoryError), without importing either library."""
    return isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError"


def peak_extra_bytes_torch(fn: Callable[[], Any]) -> MemoryReading:
    torch = torch_module()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    y = fn()
    torch.cuda.synchronize()
    return MemoryReading(max(0, torch.cuda.max_memory_allocated() - before - output_nbytes(y)))


def peak_extra_bytes_cupy(fn: Callable[[], Any]) -> MemoryReading:
    cupy = importlib.import_module("cupy")
    from cupy.cuda.memory_hook import MemoryHook

    class Peak(MemoryHook):
        name = "convbench_peak"

        def __init__(self) -> None:
            self.current = self.peak = 0

        def malloc_postprocess(self, **kw: Any) -> None:
            self.current += kw["mem_size"]
            self.peak = max(self.peak, self.current)

        def free_postprocess(self, **kw: Any) -> None:
            self.current -= kw["mem_size"]

    hook = Peak()
    cupy.cuda.Device().synchronize()
    with hook:
        y = fn()
        cupy.cuda.Device().synchronize()
    return MemoryReading(max(0, hook.peak - output_nbytes(y)))


def peak_extra_bytes(library: str, fn: Callable[[], Any]) -> MemoryReading:
    if library == "torch":
        return peak_extra_bytes_torch(fn)
    return peak_extra_bytes_cupy(fn)


def configure_torch_cuda(benchmark: bool = True) -> dict[str, Any]:
    """fp32 references: TF32 off for cuDNN and matmul; cuDNN's autotuner as asked. Returns the
    settings for meta.json."""
    torch = torch_module()
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = benchmark
    return {"cudnn_allow_tf32": False, "matmul_allow_tf32": False, "cudnn_benchmark": benchmark,
            "cudnn_version": torch.backends.cudnn.version(), "device": torch.cuda.get_device_name(0),
            "torch_cuda": torch.version.cuda}


def cuda_kernels(fn: Callable[[], Any]) -> list[str]:
    """Names of the CUDA kernels one call launches (torch profiler): cuDNN's chosen algorithm
    shows in them (e.g. winograd, implicit_gemm, fft)."""
    torch = torch_module()
    activities = [torch.profiler.ProfilerActivity.CUDA]
    with warnings.catch_warnings():  # the profiler's notes on its own event buffers
        warnings.simplefilter("ignore")
        with torch.profiler.profile(activities=activities) as prof:
            fn()
            torch.cuda.synchronize()
    names = [e.name for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    return list(dict.fromkeys(names))
