"""What the CuPy-only algorithms share: compiling a CUDA source once per dtype, and launching it.

Nothing here imports cupy until a kernel is compiled, so `import convbench` stays light.
"""

from __future__ import annotations

import functools
from typing import Any

CTYPES = {"float32": "float", "float64": "double"}
THREADS = 256


@functools.cache
def compiled(source: str, name: str, dtype: str) -> Any:
    """`source` with SCALAR as `dtype`'s C type, compiled (NVRTC) on first use."""
    import cupy

    return cupy.RawKernel(source.replace("SCALAR", CTYPES[dtype]), name)


def launch(kernel: Any, grid: tuple[int, ...], *args: Any) -> None:
    """Run `kernel` on `grid` blocks of THREADS threads; Python ints go as 32-bit ints."""
    import cupy

    kernel(grid, (THREADS,), tuple(cupy.int32(a) if isinstance(a, int) else a for a in args))


def channels_fit(p: Any) -> str | None:
    """Kernels with channels (C or K) on the grid's y axis: 65535 blocks at most."""
    largest = max(p.c, p.k)
    if largest > 65535:
        return f"the CUDA grid holds at most 65535 channels, got {largest}"
    return None


def grid_fits(p: Any) -> str | None:
    """Kernels with images and channels on the grid's y and z axes: 65535 blocks at most."""
    if p.n > 65535:
        return f"the CUDA grid holds at most 65535 images, got {p.n}"
    return channels_fit(p)


def blocks(count: int) -> int:
    """Blocks of THREADS threads that cover `count` items."""
    return (count + THREADS - 1) // THREADS
