"""What a backend declares: the library behind it, its device, how arrays reach it, and (on a
GPU) the few device calls that timing and memory need. One module per backend fills one in."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

NVIDIA_DRIVER = Path("/proc/driver/nvidia/version")


@dataclass(frozen=True)
class DeviceCalls:
    """A GPU backend's calls for timing (triton's do_bench recipe) and memory (its allocator)."""

    synchronize: Callable[[], None]
    event: Callable[[], Any]
    elapsed_s: Callable[[Any, Any], float]
    flush_buffer: Callable[[], Any]  # twice the L2 cache, zeroed before each timed call
    peak_extra_bytes: Callable[[Callable[[], Any]], int]  # above the start, less the output
    configure: Callable[[], dict[str, Any]]  # settings for fp32 references; for meta.json
    kernels: Callable[[Callable[[], Any]], list[str]] | None = None  # kernels one call launches


@dataclass(frozen=True)
class Backend:
    """One backend: its name in suites and results, and how convbench reaches it."""

    name: str
    library: str  # the package imported for it
    device: str  # "cpu" or "cuda"
    from_numpy: Callable[[np.ndarray], Any]
    owns: Callable[[Any], bool]  # whether an array lives on this backend
    probe: Callable[[], str | None] = lambda: None  # imports the library: why no device answers
    device_calls: Callable[[], DeviceCalls] | None = None
    install_hint: str = ""
    # where a reference that cannot run on this backend runs instead, for speedups
    reference_stand_in: str | None = None

    @property
    def on_gpu(self) -> bool:
        return self.device == "cuda"

    def missing(self) -> str | None:
        """Why this backend cannot run here without importing anything: package or driver."""
        if importlib.util.find_spec(self.library) is None:
            hint = f" ({self.install_hint})" if self.install_hint else ""
            return f"{self.library} is not installed{hint}"
        if self.on_gpu and not NVIDIA_DRIVER.exists():
            return "no NVIDIA GPU driver on this machine"
        return None


def lazy(library: str) -> Callable[[], ModuleType]:
    """A loader that imports `library` on first call only."""
    return lambda: importlib.import_module(library)
