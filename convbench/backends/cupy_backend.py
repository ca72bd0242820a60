"""CuPy arrays on the current CUDA device (convbench[cupy])."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from array_api_compat import is_cupy_array

from convbench.backends.base import Backend, DeviceCalls, lazy
from convbench.measure.memory import output_nbytes

cupy_module = lazy("cupy")


def _probe() -> str | None:
    try:
        count = cupy_module().cuda.runtime.getDeviceCount()
    except Exception as error:  # the CUDA runtime's own words
        return f"cupy sees no CUDA device: {error}"
    return None if count else "cupy sees no CUDA device"


def _peak_extra_bytes(fn: Callable[[], Any]) -> int:
    cupy = cupy_module()
    memory_hook = importlib.import_module("cupy.cuda.memory_hook")

    class Peak(memory_hook.MemoryHook):  # follows the pool's allocations
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
    return max(0, hook.peak - output_nbytes(y))


def _flush_buffer() -> Any:
    cupy = cupy_module()
    l2_bytes = int(cupy.cuda.runtime.getDeviceProperties(0)["l2CacheSize"])
    return cupy.empty(max(2 * l2_bytes, 64 * 2**20) // 4, dtype=cupy.float32)


def _device_calls() -> DeviceCalls:
    cuda = cupy_module().cuda
    return DeviceCalls(
        synchronize=lambda: cuda.Device().synchronize(), event=cuda.Event,
        elapsed_s=lambda start, end: cuda.get_elapsed_time(start, end) / 1e3,
        flush_buffer=_flush_buffer, peak_extra_bytes=_peak_extra_bytes, configure=dict)


CUPY = Backend(name="cupy", library="cupy", device="cuda",
               from_numpy=lambda a: cupy_module().asarray(a), owns=is_cupy_array, probe=_probe,
               device_calls=_device_calls, install_hint="pip install -e .[cupy]",
               reference_stand_in="torch-cuda")
