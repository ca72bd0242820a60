"""The textbook pooling: a loop over output positions, each window clipped to the input.

Written from torch's definitions, not from the windowed code: a window's taps are
start + r*d for start = i*S - P, those outside the input are left out (max) or count as zeros
(average, whose divisor follows count_include_pad and ceil mode as torch's does).

Each step works on all images and channels at once. The loops read their input spatial axes
first, (H, W, N, C), copied so once where there are more output positions than window taps: a
window is then a few runs of N*C contiguous values rather than N*C scattered little patches,
which makes each step several times cheaper (with fewer positions, global pooling, a permuted
view costs less than the copy). The forward passes and the average's backward write (H, W, N,
C) too and copy back once; the max backward adds each gradient to its one pixel per (n, c) of
the NCHW result, which needs no copy.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from convbench.algorithms.registry import register
from convbench.backends import ARRAY_API_BACKENDS
from convbench.backends.xp import (
    Array, add_at, add_into, argmax, contiguous, device, namespace, reduce_view)
from convbench.problems import PoolProblem

# Cost model for the harness's budget check: Python and library overhead per output position (a
# backward iteration does several indexed steps), plus the window elements at a modest rate.
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
    if p.divisor_override is not None:
        return p.divisor_override
    (sh, sw), (ph, pw), (eh, ew) = p.stride, p.padding, p.padding_after  # type: ignore[misc]
    sizes = []
    for start, window, size, pad in ((i * sh - ph, p.r, p.h, eh), (j * sw - pw, p.s, p.w, ew)):
        end = min(start + window, size + pad)
        sizes.append(end - start if p.count_include_pad else min(end, size) - max(start, 0))
    return sizes[0] * sizes[1]


def _positions(p: PoolProblem) -> Iterator[tuple[int, int, slice, slice]]:
    """(i, j, rows, cols) for every output position, its window clipped to the input."""
    for i in range(p.out_h):
        for j in range(p.out_w):
            yield (i, j, *_window(p, i, j))


def _copies_pay(p: PoolProblem) -> bool:
    """Whether channels-last copies pay for themselves: more output positions than taps."""
    return p.out_h * p.out_w >= p.r * p.s


def _spatial_first(p: PoolProblem, a: Array) -> Array:
    """(N, C, H, W) -> (H, W, N, C): a contiguous copy where copies pay, else a permuted view
    (a copy, too, on a library without views: the loops only read it)."""
    permuted = namespace(a).permute_dims(a, (2, 3, 0, 1))
    return contiguous(permuted) if _copies_pay(p) else permuted


def _zeros_spatial_first(p: PoolProblem, like: Array) -> Array:
    """(H, W, N, C) zeros for the input's gradient, laid out as _spatial_first lays out x (where
    that is a permuted view, a library without views gives a new array: the loop adds into what
    this returns, and _channels_first reads that)."""
    xp, (n, c, h, w) = namespace(like), p.input_shape
    if _copies_pay(p):
        return xp.zeros((h, w, n, c), dtype=like.dtype, device=device(like))
    return xp.permute_dims(xp.zeros((n, c, h, w), dtype=like.dtype, device=device(like)),
                           (2, 3, 0, 1))


def _channels_first(a: Array) -> Array:
    """(H, W, N, C) -> a contiguous (N, C, H, W); no copy when `a` permutes one."""
    return contiguous(namespace(a).permute_dims(a, (2, 3, 0, 1)))


@register("max_pool2d", "naive", backends=ARRAY_API_BACKENDS, per_side=True, exact=True, estimate_s=estimate_s,
          role="teaching",
          summary="loops over output positions; for teaching")
def max_pool2d_naive(p: PoolProblem, x: Array) -> Array:
    xp, x_t = namespace(x), _spatial_first(p, x)  # (H, W, N, C)
    y_t = xp.empty((p.out_h, p.out_w, p.n, p.c), dtype=x.dtype, device=device(x))  # (OH, OW, N, C)
    for i, j, rows, cols in _positions(p):
        y_t[i, j, ...] = reduce_view(x_t[rows, cols, ...], "max", axis=(0, 1))
    return _channels_first(y_t)


@register("avg_pool2d", "naive", backends=ARRAY_API_BACKENDS, per_side=True, estimate_s=estimate_s,
          role="teaching",
          summary="loops over output positions; for teaching")
def avg_pool2d_naive(p: PoolProblem, x: Array) -> Array:
    xp, x_t = namespace(x), _spatial_first(p, x)  # (H, W, N, C)
    y_t = xp.empty((p.out_h, p.out_w, p.n, p.c), dtype=x.dtype, device=device(x))
    for i, j, rows, cols in _positions(p):
        window_sum = reduce_view(x_t[rows, cols, ...], "sum", axis=(0, 1))  # (N, C)
        y_t[i, j, ...] = window_sum / _divisor(p, i, j)
    return _channels_first(y_t)


def _images_and_channels(xp: Any, p: PoolProblem, like: Array) -> tuple[Array, Array]:
    """(N, C) arrays of each element's image and channel, to index one pixel per (n, c)."""
    images = xp.arange(p.n, device=device(like))
    return xp.meshgrid(images, xp.arange(p.c, device=device(like)), indexing="ij")


def _tap_offsets(xp: Any, p: PoolProblem, taps: tuple[int, int], like: Array) -> Array:
    """(taps_h*taps_w,): each tap of a (clipped) window, in scan order, as its distance from the
    window's first pixel in the flattened H*W plane."""
    (dh, dw), on = p.dilation, device(like)  # type: ignore[misc]
    rows = xp.reshape(xp.arange(taps[0], device=on) * (dh * p.w), (-1, 1))  # (taps_h, 1)
    return xp.reshape(rows + xp.arange(taps[1], device=on) * dw, (-1,))


@register("max_pool2d_backward", "naive", backends=ARRAY_API_BACKENDS, per_side=True, exact=True,
          estimate_s=estimate_s, role="teaching",
          summary="loops over output positions, adding each gradient at its window's argmax")
def max_pool2d_backward_naive(p: PoolProblem, grad_out: Array, x: Array) -> Array:
    xp, x_t = namespace(grad_out, x), _spatial_first(p, x)  # (H, W, N, C)
    grad_x = xp.zeros((p.n, p.c, p.h * p.w), dtype=grad_out.dtype, device=device(grad_out))
    n, c = _images_and_channels(xp, p, x)  # (N, C) each
    offsets = functools.cache(functools.partial(_tap_offsets, xp, p, like=x))  # by window size
    for i, j, rows, cols in _positions(p):
        patch = xp.permute_dims(x_t[rows, cols, ...], (2, 3, 0, 1))  # (N, C, taps_h, taps_w)
        first = argmax(xp.reshape(patch, (p.n, p.c, -1)), axis=2)  # the first maximum, as torch
        pixel = rows.start * p.w + cols.start + offsets(patch.shape[2:])[first]  # (N, C) in H*W
        add_at(grad_x, (n, c, pixel), grad_out[:, :, i, j])
    return xp.reshape(grad_x, p.input_shape)


@register("avg_pool2d_backward", "naive", backends=ARRAY_API_BACKENDS, per_side=True, estimate_s=estimate_s,
          role="teaching",
          summary="loops over output positions, spreading each gradient over its window")
def avg_pool2d_backward_naive(p: PoolProblem, grad_out: Array, x: Array) -> Array:
    grad_out_t = _spatial_first(p, grad_out)  # (OH, OW, N, C)
    grad_x_t = _zeros_spatial_first(p, grad_out)  # (H, W, N, C)
    for i, j, rows, cols in _positions(p):
        add_into(grad_x_t, (rows, cols, ...), grad_out_t[i, j, ...] / _divisor(p, i, j))
    return _channels_first(grad_x_t)
