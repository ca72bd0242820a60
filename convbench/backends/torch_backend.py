"""torch tensors, on the CPU (`torch`) and on the current CUDA device (`torch-cuda`)."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
from array_api_compat import is_torch_array

from convbench.backends.base import Backend, DeviceCalls
from convbench.measure.memory import output_nbytes


@functools.cache
def torch_module() -> ModuleType:
    """torch, imported on first use: `import convbench` and `convbench list` never load it."""
    import torch

    return torch


def _tensor(a: np.ndarray) -> Any:
    return torch_module().from_numpy(np.ascontiguousarray(a))


def _probe() -> str | None:
    return None if torch_module().cuda.is_available() else "torch sees no CUDA device"


def _peak_extra_bytes(fn: Callable[[], Any]) -> int:
    cuda = torch_module().cuda
    cuda.synchronize()
    cuda.reset_peak_memory_stats()
    before = cuda.memory_allocated()
    y = fn()
    cuda.synchronize()
    return max(0, cuda.max_memory_allocated() - before - output_nbytes(y))


def _flush_buffer() -> Any:
    torch = torch_module()
    l2_bytes = int(torch.cuda.get_device_properties(0).L2_cache_size)
    count = max(2 * l2_bytes, 64 * 2**20) // 4
    return torch.empty(count, dtype=torch.float32, device="cuda")


def configure() -> dict[str, Any]:
    """fp32 references: TF32 off for cuDNN and matmul; cuDNN's autotuner on. Returns the
    settings for meta.json."""
    torch = torch_module()
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    return {"cudnn_allow_tf32": False, "matmul_allow_tf32": False, "cudnn_benchmark": True,
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


def _device_calls() -> DeviceCalls:
    cuda = torch_module().cuda
    return DeviceCalls(
        synchronize=cuda.synchronize, event=lambda: cuda.Event(enable_timing=True),
        elapsed_s=lambda start, end: start.elapsed_time(end) / 1e3, flush_buffer=_flush_buffer,
        peak_extra_bytes=_peak_extra_bytes, configure=configure, kernels=cuda_kernels)


TORCH = Backend(name="torch", library="torch", device="cpu", from_numpy=_tensor,
                owns=lambda a: is_torch_array(a) and not a.is_cuda)
TORCH_CUDA = Backend(name="torch-cuda", library="torch", device="cuda",
                     from_numpy=lambda a: _tensor(a).cuda(),
                     owns=lambda a: is_torch_array(a) and a.is_cuda, probe=_probe,
                     device_calls=_device_calls)
