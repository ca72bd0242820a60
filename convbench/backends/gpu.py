"""Timing and memory on CUDA devices, for the GPU backends (their device calls).

Timing as triton's do_bench: warm-up, then per call an L2 flush (writing a buffer twice the L2
size), a CUDA event before and after, and the elapsed time read after synchronising; samples are
taken until the budget and the minimum count are met, and summarised like CPU samples.
Memory from the framework's allocator (torch's peak-allocated counter; for cupy a memory hook
that follows the pool's allocations): as on the CPU, the peak above the call's start less the
output.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from convbench.backends import device_calls
from convbench.measure.memory import MemoryReading
from convbench.measure.timing import Measurement, TimingPolicy


def _flush(buffer: Any) -> None:
    buffer.zero_() if hasattr(buffer, "zero_") else buffer.fill(0)


def _done(elapsed_s: float, count: int, policy: TimingPolicy) -> bool:
    return (elapsed_s >= policy.budget_s and count >= policy.min_repeats) or (
        elapsed_s >= policy.limit_s and count >= 3) or count >= policy.max_repeats


def measure_cuda(backend: str) -> Callable[[Callable[[], object], TimingPolicy], Measurement]:
    """A timer for closures that launch work on `backend`'s current CUDA device."""
    device = device_calls(backend)

    def timer(fn: Callable[[], object], policy: TimingPolicy) -> Measurement:
        flush, samples = device.flush_buffer(), []
        fn()
        device.synchronize()
        start_wall = time.perf_counter()
        while not _done(time.perf_counter() - start_wall, len(samples), policy):
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


def peak_extra_bytes(backend: str, fn: Callable[[], Any]) -> MemoryReading:
    return MemoryReading(device_calls(backend).peak_extra_bytes(fn))


def kernels(backend: str, fn: Callable[[], Any]) -> list[str]:
    """The CUDA kernels one call launches, where the backend can tell (torch's profiler)."""
    listed = device_calls(backend).kernels
    return listed(fn) if listed else []


def configure(backend: str) -> dict[str, Any]:
    """Put a GPU backend in its fp32-reference settings; what was set, for meta.json."""
    return device_calls(backend).configure()
