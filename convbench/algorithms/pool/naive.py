"""The textbook pooling: a loop over output positions, each window clipped to the input.

Written from torch's definitions, not from the windowed code: a window's taps are
start + r*d for start = i*S - P, those outside the input are left out (max) or count as zeros
(average, whose divisor follows count_include_pad and ceil mode as torch's does).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from convbench.problems import PoolProblem
from convbench.algorithms.registry import register

# Cost model for the harness's budget check: Python overhead per output position (a backward
# iteration does several fancy-indexed steps), plus the window elements at a modest rate.
# Deliberately pessimistic, as direct_naive's.
_SECONDS_PER_ITERATION = {"fwd": 5e-5, "bwd_data": 1.5e-4}
_ELEMENTS_PER_SECOND = 2e8


def estimate_s(p: PoolProblem) -> float:
    elements = p.n * p.c * p.out_h * p.out_w * p.r * p.s
    iteration_s = _SECONDS_PER_ITERATION[p.direction]
    return p.out_h * p.out_w * iteration_s + elements / _ELEMENTS_PER_SECOND


def _taps(start: int, count: int, step: int, size: int) -> slice:
    """The taps start + r*step (r < count) that fall inside [0, size), as a slice."""
    first = 0 if start >= 0 else -(start // step)
    last = min(count - 1, (size - 1 - start) // step)
    if last < first:
        return slice(0, 0)
    return slice(start + first * step, start + last * step + 1, step)


def _window(p: PoolProblem, i: int, j: int) -> tuple[slice, slice]:
    (sh, sw), (ph, pw), (dh, dw) = p.stride, p.padding, p.dilation  # type: ignore[misc]
    return (_taps(i * sh - ph, p.r, dh, p.h), _taps(j * sw - pw, p.s, dw, p.w))


def _divisor(p: PoolProblem, i: int, j: int) -> int:
    """torch's: the window clipped to the padded input, or (count_include_pad=False) the input."""
    (sh, sw), (ph, pw) = p.stride, p.padding  # type: ignore[misc]
    sizes = []
    for start, window, size, pad in ((i * sh - ph, p.r, p.h, ph), (j * sw - pw, p.s, p.w, pw)):
        end = min(start + window, size + pad)
        sizes.append(end - start if p.count_include_pad else min(end, size) - max(start, 0))
    return sizes[0] * sizes[1]


def _positions(p: PoolProblem) -> Iterator[tuple[int, int, slice, slice]]:
    """(i, j, rows, cols) for every output position, its window clipped to the input."""
    for i in range(p.out_h):
        for j in range(p.out_w):
            yield (i, j, *_window(p, i, j))


@register("max_pool2d", "naive", exact=True, estimate_s=estimate_s,
          summary="loops over output positions; for teaching")
def max_pool2d_naive(p: PoolProblem, x: np.ndarray) -> np.ndarray:
    y = np.empty(p.output_shape, dtype=x.dtype)
    for i, j, rows, cols in _positions(p):
        y[:, :, i, j] = x[:, :, rows, cols].max(axis=(2, 3), initial=-np.inf)
    return y


@register("avg_pool2d", "naive", estimate_s=estimate_s,
          summary="loops over output positions; for teaching")
def avg_pool2d_naive(p: PoolProblem, x: np.ndarray) -> np.ndarray:
    y = np.empty(p.output_shape, dtype=x.dtype)
    for i, j, rows, cols in _positions(p):
        y[:, :, i, j] = x[:, :, rows, cols].sum(axis=(2, 3)) / x.dtype.type(_divisor(p, i, j))
    return y


@register("max_pool2d_backward", "naive", exact=True, estimate_s=estimate_s,
          summary="loops over output positions, adding each gradient at its window's argmax")
def max_pool2d_backward_naive(p: PoolProblem, grad_out: np.ndarray,
                              x: np.ndarray) -> np.ndarray:
    grad_x = np.zeros(p.input_shape, dtype=grad_out.dtype)
    n, c = np.indices((p.n, p.c))  # (N, C) each
    for i, j, rows, cols in _positions(p):
        patch = x[:, :, rows, cols]  # (N, C, taps_h, taps_w), in scan order
        first = patch.reshape(p.n, p.c, -1).argmax(axis=2)  # the first maximum, as torch
        row, col = np.divmod(first, patch.shape[3])
        grad_x[n, c, rows.start + row * rows.step, cols.start + col * cols.step] += \
            grad_out[:, :, i, j]
    return grad_x


@register("avg_pool2d_backward", "naive", estimate_s=estimate_s,
          summary="loops over output positions, spreading each gradient over its window")
def avg_pool2d_backward_naive(p: PoolProblem, grad_out: np.ndarray,
                              x: np.ndarray) -> np.ndarray:
    grad_x = np.zeros(p.input_shape, dtype=grad_out.dtype)
    for i, j, rows, cols in _positions(p):
        share = grad_out[:, :, i, j] / grad_out.dtype.type(_divisor(p, i, j))  # (N, C)
        grad_x[:, :, rows, cols] += share[:, :, None, None]
    return grad_x
