"""What the pooling algorithms share: torch's average-pooling divisor, and the first-maximum rule.

torch's avg_pool2d divides each window's sum by the window clipped to the padded input (in ceil
mode the last window may reach past the padding, and that overhang never counts), or, with
count_include_pad=False, by the window clipped to the input itself.
"""

from __future__ import annotations

import numpy as np

from convbench.backends.xp import Array, constant
from convbench.problems import PoolProblem


def _divisor_axis(size: int, out: int, window: int, stride: int, padding: int,
                  include_pad: bool, padding_end: int) -> np.ndarray:
    start = np.arange(out) * stride - padding  # (O,) window starts, in input coordinates
    end = np.minimum(start + window, size + padding_end)
    if include_pad:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)


def divisor(p: PoolProblem) -> np.ndarray:
    """(OH, OW): what torch divides each output's window sum by (divisor_override when set).
    Separable: rows times columns; padding may differ before and after an axis."""
    if p.divisor_override is not None:
        return np.full(p.out_size, p.divisor_override, dtype=p.dtype)
    rows, cols = (_divisor_axis(size, out, window, stride, before, p.count_include_pad, after)
                  for _, size, window, stride, before, after, _, out in p.axes())
    return np.outer(rows, cols).astype(p.dtype)


def divisor_like(p: PoolProblem, like: Array) -> Array:
    """`divisor` on `like`'s library and device, in its dtype (numpy: no copy)."""
    return constant(divisor(p), like)
