"""Peak extra memory of one call: what it allocates beyond its inputs and its output.

numpy reports its array allocations to tracemalloc, so the traced peak during a call, less the
output that the call returns, is the workspace the algorithm needed. Libraries that allocate
outside Python's view (torch's CPU allocator, BLAS's own buffers) are invisible to it: when the
trace did not even see the output being allocated, the figure would be meaningless, and None
is returned with the reason.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass



@dataclass(frozen=True)
class MemoryReading:
    peak_extra_bytes: int | None
    note: str = ""


def output_nbytes(y: object) -> int:
    """Bytes of an output: an array of any library, or a tuple of them (a backward pass)."""
    if isinstance(y, tuple):
        return sum(output_nbytes(part) for part in y)
    if y is None:
        return 0
    if hasattr(y, "nbytes"):
        return int(y.nbytes)
    return int(y.numel() * y.element_size())  # a torch tensor


def peak_extra_bytes(fn: Callable[[], object]) -> MemoryReading:
    """Run `fn` once under tracemalloc; the traced peak above the start, minus the output."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        y = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    output_bytes = output_nbytes(y)
    seen = peak - before
    if output_bytes and seen < output_bytes:
        return MemoryReading(None, "allocations not visible to tracemalloc")
    return MemoryReading(max(0, seen - output_bytes))
