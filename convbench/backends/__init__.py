"""Array backends: the one seam between convbench and the array libraries.

Each backend is declared in a module of its own (numpy_backend, torch_backend, cupy_backend):
its library, its device, how a numpy array reaches it, and on a GPU the device calls timing and
memory need. This package collects them and answers the harness's questions: which exist, why
one cannot run here, moving arrays. xp.py is the array shim the algorithms use; gpu.py times
on a CUDA device. Nothing imports torch or cupy until an array must be made on them or a run
asks whether a device really answers; `convbench list` only looks for the packages and driver.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from convbench.backends.base import Backend, DeviceCalls
from convbench.backends.cupy_backend import CUPY
from convbench.backends.numpy_backend import NUMPY
from convbench.backends.torch_backend import TORCH, TORCH_CUDA, torch_module

REGISTERED: dict[str, Backend] = {b.name: b for b in (NUMPY, TORCH, TORCH_CUDA, CUPY)}
BACKENDS: tuple[str, ...] = tuple(REGISTERED)
GPU_BACKENDS: tuple[str, ...] = tuple(n for n, b in REGISTERED.items() if b.on_gpu)
# What an algorithm written against the array API (convbench.backends.xp) runs on.
ARRAY_API_BACKENDS: tuple[str, ...] = BACKENDS

__all__ = [
    "ARRAY_API_BACKENDS", "BACKENDS", "GPU_BACKENDS", "REGISTERED", "Backend", "DeviceCalls",
    "backend_named", "backend_of", "backend_why_not", "device_calls", "library_of",
    "reference_stand_in", "to_backend", "to_numpy", "torch_module",
]


def backend_named(name: str) -> Backend:
    """The declaration of backend `name`; a ValueError lists the known ones."""
    try:
        return REGISTERED[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r} (known: {', '.join(BACKENDS)})") from None


@functools.cache
def _probe(name: str) -> str | None:
    return REGISTERED[name].probe()


def backend_why_not(backend: str, probe: bool = False) -> str | None:
    """Why `backend` cannot run here, as one sentence; None if it can. With `probe`, the library
    is imported and asked (runs do that before a GPU case); without, packages and driver only."""
    if backend not in REGISTERED:
        return f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})"
    return REGISTERED[backend].missing() or (_probe(backend) if probe else None)


def to_backend(a: np.ndarray | None, backend: str) -> Any:
    """A numpy array as an array of `backend` (on its device); None stays None."""
    return None if a is None else backend_named(backend).from_numpy(a)


def to_numpy(a: Any) -> np.ndarray:
    """Any backend's array as a numpy array on the host."""
    if isinstance(a, np.ndarray):
        return a
    if CUPY.owns(a):
        return a.get()
    return a.detach().cpu().numpy()


def backend_of(a: Any) -> str:
    """The backend an array lives on (numpy for an array no backend claims). numpy's arrays are
    answered first: `auto` asks on every call it times."""
    if type(a) is np.ndarray:
        return NUMPY.name
    return next((b.name for b in REGISTERED.values() if b.owns(a)), NUMPY.name)


def library_of(backend: str) -> str:
    return backend_named(backend).library


def device_calls(backend: str) -> DeviceCalls:
    """The device calls of a GPU backend (imports its library)."""
    declared = backend_named(backend)
    if declared.device_calls is None:
        raise ValueError(f"backend {backend!r} runs on the {declared.device}, not a GPU")
    return declared.device_calls()


def reference_stand_in(backend: str) -> str | None:
    """Where the reference runs for speedups on `backend` when it cannot run there itself."""
    return backend_named(backend).reference_stand_in
