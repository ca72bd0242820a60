"""Array backends: which exist, why one is unavailable here, and moving arrays to and from them.

Only this module (with convbench.backends.gpu for device timing and memory) knows which libraries back
which backend. Nothing here imports torch or cupy until an array must be made on them or a run
asks whether a device really answers; `convbench list` only looks for the packages and driver.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from array_api_compat import is_cupy_array, is_torch_array

BACKENDS: tuple[str, ...] = ("numpy", "torch", "torch-cuda", "cupy")
GPU_BACKENDS: tuple[str, ...] = ("torch-cuda", "cupy")
# What an algorithm written against the array API (convbench.backends.xp) runs on.
ARRAY_API_BACKENDS: tuple[str, ...] = BACKENDS
_LIBRARY = {"numpy": "numpy", "torch": "torch", "torch-cuda": "torch", "cupy": "cupy"}
_DRIVER = Path("/proc/driver/nvidia/version")


@functools.cache
def torch_module() -> ModuleType:
    """torch, imported on first use: `import convbench` and `convbench list` never load it."""
    return importlib.import_module("torch")


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _cheap_reason(backend: str) -> str | None:
    library = _LIBRARY[backend]
    if not _installed(library):
        hint = " (pip install -e .[cupy])" if library == "cupy" else ""
        return f"{library} is not installed{hint}"
    if backend in GPU_BACKENDS and not _DRIVER.exists():
        return "no NVIDIA GPU driver on this machine"
    return None


@functools.cache
def _probe(backend: str) -> str | None:
    """Ask the library itself whether a device answers (imports it)."""
    if backend == "torch-cuda":
        torch = torch_module()
        return None if torch.cuda.is_available() else "torch sees no CUDA device"
    if backend == "cupy":
        cupy = importlib.import_module("cupy")
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as error:  # the CUDA runtime's own words
            return f"cupy sees no CUDA device: {error}"
        return None if count else "cupy sees no CUDA device"
    return None


def backend_why_not(backend: str, probe: bool = False) -> str | None:
    """Why `backend` cannot run here, as one sentence; None if it can. With `probe`, the library
    is imported and asked (runs do that before a GPU case); without, packages and driver only."""
    if backend not in BACKENDS:
        return f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})"
    return _cheap_reason(backend) or (_probe(backend) if probe else None)


def to_backend(a: np.ndarray | None, backend: str) -> Any:
    """A numpy array as an array of `backend` (on its device); None stays None."""
    if a is None or backend == "numpy":
        return a
    if backend == "cupy":
        return importlib.import_module("cupy").asarray(a)
    tensor = torch_module().from_numpy(np.ascontiguousarray(a))
    return tensor.cuda() if backend == "torch-cuda" else tensor


def to_numpy(a: Any) -> np.ndarray:
    """Any backend's array as a numpy array on the host."""
    if isinstance(a, np.ndarray):
        return a
    if type(a).__module__.startswith("cupy"):
        return a.get()
    return a.detach().cpu().numpy()


def backend_of(a: Any) -> str:
    """The backend an array lives on (numpy for anything that is not a cupy or torch array)."""
    if is_cupy_array(a):
        return "cupy"
    if is_torch_array(a):
        return "torch-cuda" if a.is_cuda else "torch"
    return "numpy"


def library_of(backend: str) -> str:
    return _LIBRARY[backend]
