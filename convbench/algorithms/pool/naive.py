"""The textbook pooling: a loop over output positions, each window clipped to the input.

Written from torch's definitions, not from the windowed code: a window's taps are
start + r*d for start = i*S - P on each axis, those outside the input are left out (max) or
count as zeros (average, whose divisor follows count_include_pad and ceil mode as torch's
does). A max window lying wholly in the padding (dilation makes that possible) has no taps:
-inf, and no gradient, as torch.

Each step works on all images and channels at once. The loops read their input spatial axes
first, (*spatial, N, C), copied so once where there are more output positions than window taps:
a window is then a few runs of N*C contiguous values rather than N*C scattered little patches,
which makes each step several times cheaper (with fewer positions, global pooling, a permuted
view costs less than the copy). The forward passes and the average's backward write
(*out, N, C) too and copy back once, into the input's memory layout (channels first or last:
either is one permutation away); the max backward adds each gradient to its one pixel per
(n, c) of the result, which needs no copy.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterator
from typing import Any

from convbench.algorithms.pool.common import holds_nan, in_layout, winning_tap
from convbench.algorithms.registry import register
from convbench.backends import ARRAY_API_BACKENDS
from convbench.backends.xp import (
    Array, add_at, add_into, contiguous, device, namespace, reduce_view)
from convbench.problems import LAYOUTS, PoolProblem

# Cost model for the harness's budget check: Python and library overhead per output position (a
# backward iteration does several indexed steps), plus the window elements at a modest rate.
# Deliberately pessimistic, as direct_naive's.
_SECONDS_PER_ITERATION = {"fwd": 5e-5, "bwd_data": 1.5e-4}
_ELEMENTS_PER_SECOND = 2e8

Window = tuple[slice, ...]  # one slice of input positions per spatial axis


def estimate_s(p: PoolProblem) -> float:
    elements = p.n * p.c * p.pixels * p.window
    iteration_s = _SECONDS_PER_ITERATION[p.direction]
    return p.pixels * iteration_s + elements / _ELEMENTS_PER_SECOND


def _taps(start: int, count: int, step: int, size: int) -> slice:
    """The taps start + r*step (r < count) that fall inside [0, size), as a slice."""
    first = 0 if start >= 0 else -(start // step)
    last = min(count - 1, (size - 1 - start) // step)
    if last < first:
        return slice(0, 0)
    return slice(start + first * step, start + last * step + 1, step)


def _window(p: PoolProblem, position: tuple[int, ...]) -> Window:
    return tuple(_taps(i * stride - before, k, d, size) for i, size, k, stride, before, d
                 in zip(position, p.size, p.kernel, p.stride, p.padding, p.dilation,
                        strict=True))


def _empty(window: Window) -> bool:
    """Whether a clipped window has no tap in the input (it lies wholly in the padding)."""
    return any(taps.stop <= taps.start for taps in window)


def _divisor(p: PoolProblem, position: tuple[int, ...]) -> int:
    """torch's: the window clipped to the padded input, or (count_include_pad=False) the input."""
    if p.divisor_override is not None:
        return p.divisor_override
    count = 1
    for i, (_, size, window, stride, before, after, _, _) in zip(position, p.axes()):
        start = i * stride - before
        end = min(start + window, size + after)
        count *= end - start if p.count_include_pad else min(end, size) - max(start, 0)
    return count


def _positions(p: PoolProblem) -> Iterator[tuple[tuple[int, ...], Window]]:
    """(position, window) for every output position in scan order, its window clipped to the
    input."""
    for position in itertools.product(*map(range, p.out_size)):
        yield position, _window(p, position)


def _copies_pay(p: PoolProblem) -> bool:
    """Whether spatial-first copies pay for themselves: more output positions than taps."""
    return p.pixels >= p.window


def _spatial_first(p: PoolProblem, a: Array) -> Array:
    """(N, C, *spatial) -> (*spatial, N, C): a contiguous copy where copies pay, else a
    permuted view (a copy, too, on a library without views: the loops only read it). Either
    memory layout in."""
    permuted = namespace(a).permute_dims(a, (*range(2, a.ndim), 0, 1))
    return contiguous(permuted) if _copies_pay(p) else permuted


def _zeros_spatial_first(p: PoolProblem, like: Array) -> Array:
    """(*size, N, C) zeros for the input's gradient, laid out as _spatial_first lays out x;
    where that is a permuted view, a view of zeros in the result's own layout, so that
    _in_layout copies nothing (a library without views gives a new array: the loop adds into
    what this returns, and _in_layout reads that)."""
    xp, (n, c, *size), on = namespace(like), p.input_shape, device(like)
    if _copies_pay(p):
        return xp.zeros((*size, n, c), dtype=like.dtype, device=on)
    if p.channels_last:  # (N, *size, C) in memory
        zeros = xp.zeros((n, *size, c), dtype=like.dtype, device=on)
        return xp.permute_dims(zeros, (*range(1, p.rank + 1), 0, p.rank + 1))
    zeros = xp.zeros((n, c, *size), dtype=like.dtype, device=on)
    return xp.permute_dims(zeros, (*range(2, p.rank + 2), 0, 1))


def _in_layout(p: PoolProblem, a: Array) -> Array:
    """(*spatial, N, C) -> (N, C, *spatial), contiguous in the problem's memory layout; no copy
    when `a` permutes such an array."""
    rank = a.ndim - 2
    return in_layout(p, namespace(a).permute_dims(a, (rank, rank + 1, *range(rank))))


@register("max_pool2d", "naive", backends=ARRAY_API_BACKENDS, per_side=True, ranks=(2, 3),
          layouts=LAYOUTS, exact=True, estimate_s=estimate_s, role="teaching",
          summary="loops over output positions; for teaching")
def max_pool2d_naive(p: PoolProblem, x: Array) -> Array:
    xp, x_t = namespace(x), _spatial_first(p, x)  # (*size, N, C)
    y_t = xp.empty((*p.out_size, p.n, p.c), dtype=x.dtype, device=device(x))  # (*out, N, C)
    spatial = tuple(range(p.rank))
    for position, window in _positions(p):
        if _empty(window):
            y_t[(*position, ...)] = -math.inf
        else:
            y_t[(*position, ...)] = reduce_view(x_t[(*window, ...)], "max", axis=spatial)
    return _in_layout(p, y_t)


@register("avg_pool2d", "naive", backends=ARRAY_API_BACKENDS, per_side=True, ranks=(2, 3),
          layouts=LAYOUTS, estimate_s=estimate_s, role="teaching",
          summary="loops over output positions; for teaching")
def avg_pool2d_naive(p: PoolProblem, x: Array) -> Array:
    xp, x_t = namespace(x), _spatial_first(p, x)  # (*size, N, C)
    y_t = xp.empty((*p.out_size, p.n, p.c), dtype=x.dtype, device=device(x))
    spatial = tuple(range(p.rank))
    for position, window in _positions(p):
        window_sum = reduce_view(x_t[(*window, ...)], "sum", axis=spatial)  # (N, C)
        y_t[(*position, ...)] = window_sum / _divisor(p, position)
    return _in_layout(p, y_t)


def _images_and_channels(xp: Any, p: PoolProblem, like: Array) -> tuple[Array, Array]:
    """(N, C) arrays of each element's image and channel, to index one pixel per (n, c)."""
    images = xp.arange(p.n, device=device(like))
    return xp.meshgrid(images, xp.arange(p.c, device=device(like)), indexing="ij")


def _plane_strides(p: PoolProblem) -> tuple[int, ...]:
    """Each spatial axis's step in a flattened plane of the input (W's is 1)."""
    return tuple(math.prod(p.size[axis + 1:]) for axis in range(p.rank))


def _tap_offsets(xp: Any, p: PoolProblem, taps: tuple[int, ...], like: Array) -> Array:
    """(prod(taps),): each tap of a (clipped) window, in scan order, as its distance from the
    window's first pixel in the flattened plane of the input."""
    on, offsets = device(like), 0
    for axis, (count, d, step) in enumerate(zip(taps, p.dilation, _plane_strides(p))):
        shape = tuple(count if a == axis else 1 for a in range(len(taps)))
        offsets = offsets + xp.reshape(xp.arange(count, device=on) * (d * step), shape)
    return xp.reshape(offsets, (-1,))


@register("max_pool2d_backward", "naive", backends=ARRAY_API_BACKENDS, per_side=True,
          ranks=(2, 3), layouts=LAYOUTS, exact=True, estimate_s=estimate_s, role="teaching",
          summary="loops over output positions, adding each gradient at its window's argmax")
def max_pool2d_backward_naive(p: PoolProblem, grad_out: Array, x: Array) -> Array:
    xp, x_t, nans = namespace(grad_out, x), _spatial_first(p, x), holds_nan(x)  # (*size, N, C)
    plane, on = math.prod(p.size), device(grad_out)
    shape = (p.n, plane, p.c) if p.channels_last else (p.n, p.c, plane)  # the result's memory
    grad_x = xp.zeros(shape, dtype=grad_out.dtype, device=on)
    n, c = _images_and_channels(xp, p, x)  # (N, C) each
    offsets = functools.cache(functools.partial(_tap_offsets, xp, p, like=x))  # by window size
    strides, rank = _plane_strides(p), p.rank
    for position, window in _positions(p):
        if _empty(window):
            continue  # wholly in the padding: its gradient goes nowhere (torch's)
        patch = xp.permute_dims(x_t[(*window, ...)], (rank, rank + 1, *range(rank)))
        winner = winning_tap(xp.reshape(patch, (p.n, p.c, -1)), 2, nans)  # (N, C), as torch
        first = sum(taps.start * step for taps, step in zip(window, strides))
        pixel = first + offsets(tuple(patch.shape[2:]))[winner]  # (N, C) in the plane
        index = (n, pixel, c) if p.channels_last else (n, c, pixel)
        add_at(grad_x, index, grad_out[(slice(None), slice(None), *position)])
    if not p.channels_last:
        return xp.reshape(grad_x, p.input_shape)
    stored = xp.reshape(grad_x, (p.n, *p.size, p.c))
    return xp.permute_dims(stored, (0, rank + 1, *range(1, rank + 1)))


@register("avg_pool2d_backward", "naive", backends=ARRAY_API_BACKENDS, per_side=True,
          ranks=(2, 3), layouts=LAYOUTS, estimate_s=estimate_s, role="teaching",
          summary="loops over output positions, spreading each gradient over its window")
def avg_pool2d_backward_naive(p: PoolProblem, grad_out: Array, x: Array) -> Array:
    grad_out_t = _spatial_first(p, grad_out)  # (*out, N, C)
    grad_x_t = _zeros_spatial_first(p, grad_out)  # (*size, N, C)
    for position, window in _positions(p):
        share = grad_out_t[(*position, ...)] / _divisor(p, position)
        add_into(grad_x_t, (*window, ...), share)
    return _in_layout(p, grad_x_t)
