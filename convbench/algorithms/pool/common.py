"""What the pooling algorithms share: torch's average-pooling divisor, the tap a max window's
gradient goes to (torch's rule), and results in the problem's memory layout.

torch's avg_pool divides each window's sum by the window clipped to the padded input (in ceil
mode the last window may reach past the padding, and that overhang never counts), or, with
count_include_pad=False, by the window clipped to the input itself.
"""

from __future__ import annotations

import functools

import numpy as np

from convbench.backends.xp import Array, argmax, constant, contiguous, device, namespace
from convbench.problems import PoolProblem


def _divisor_axis(size: int, out: int, window: int, stride: int, padding: int,
                  include_pad: bool, padding_end: int) -> np.ndarray:
    start = np.arange(out) * stride - padding  # (O,) window starts, in input coordinates
    end = np.minimum(start + window, size + padding_end)
    if include_pad:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)


def divisor(p: PoolProblem) -> np.ndarray:
    """(*out): what torch divides each output's window sum by (divisor_override when set).
    Separable: the outer product of one count per axis; padding may differ before and after
    an axis."""
    if p.divisor_override is not None:
        return np.full(p.out_size, p.divisor_override, dtype=p.dtype)
    counts = (_divisor_axis(size, out, window, stride, before, p.count_include_pad, after)
              for _, size, window, stride, before, after, _, out in p.axes())
    return functools.reduce(np.multiply.outer, counts).astype(p.dtype)


def divisor_like(p: PoolProblem, like: Array) -> Array:
    """`divisor` on `like`'s library and device, in its dtype (numpy: no copy)."""
    return constant(divisor(p), like)


def holds_nan(x: Array) -> bool:
    """Whether `x` holds a NaN: one reduction, no copy (a maximum propagates NaN in the array
    API standard, numpy, cupy and torch), so that inputs without one skip the NaN search."""
    xp = namespace(x)
    return bool(xp.isnan(xp.max(x)))


def winning_tap(taps: Array, axis: int, nans: bool) -> Array:
    """The tap, along `axis` of `taps` (each window's taps in scan order), that torch's CPU
    kernel sends a max window's gradient to: the window's last NaN where it holds one (torch
    takes a tap when `val > max or isnan(val)`), else its first maximum (argmax's rule, and
    torch's on ties). `nans`: whether any window may hold a NaN (holds_nan); without one the
    NaN search, a copy of `taps`' size, is skipped."""
    first = argmax(taps, axis=axis)
    if not nans:
        return first
    xp, count = namespace(taps), taps.shape[axis]
    shape = tuple(count if a == axis % taps.ndim else 1 for a in range(taps.ndim))
    after = xp.reshape(xp.arange(1, count + 1, device=device(taps)), shape)  # tap + 1
    last_nan = xp.max(xp.astype(xp.isnan(taps), after.dtype) * after, axis=axis) - 1
    return xp.where(last_nan >= 0, last_nan, xp.astype(first, last_nan.dtype))


def in_layout(p: PoolProblem, a: Array) -> Array:
    """(N, C, *spatial) `a` contiguous in the problem's memory layout: channels first, or
    channels last as torch's channels_last (an (N, *spatial, C) array, viewed); no copy when it
    lies so already."""
    if not p.channels_last:
        return contiguous(a)
    xp, last = namespace(a), a.ndim - 1
    stored = contiguous(xp.permute_dims(a, (0, *range(2, a.ndim), 1)))  # (N, *spatial, C)
    return xp.permute_dims(stored, (0, last, *range(1, last)))
