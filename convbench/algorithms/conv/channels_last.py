"""The direct and im2col convolutions of any rank, computed channels last.

With channels last in memory (N, *spatial, C), a kernel tap's pixels are runs of C contiguous
values and the channel contraction is one GEMM over every output position: no layout change
is needed in or out, which is what makes NHWC the fast CPU layout (oneDNN's, torch's
channels_last). These paths serve every problem that is not a 2-D channels-first one (3-D
volumes, and channels-last memory at ranks 2 and 3); a channels-first 3-D input is permuted
once, inside the timed call. Array-API code (numpy, cupy, torch).
"""

from __future__ import annotations

import itertools
import math

from convbench.backends.xp import Array, array_strides, contiguous, device, namespace, strided
from convbench.backends.xp import pad_constant
from convbench.problems import ConvProblem


def spatial_last(p: ConvProblem, x: Array) -> Array:
    """x (N, C, *spatial) as (N, *spatial, C): a view of channels-last memory, else a copy."""
    xp = namespace(x)
    moved = xp.permute_dims(x, (0, *range(2, 2 + p.rank), 1))
    return moved if p.channels_last else contiguous(moved)


def padded(p: ConvProblem, x_last: Array) -> Array:
    """(N, *spatial, C) padded before and after each spatial axis."""
    sides = tuple(zip(p.padding, p.padding_after, strict=True))
    if not any(b or e for b, e in sides):
        return x_last
    return pad_constant(x_last, ((0, 0), *sides, (0, 0)))


def channels_first(p: ConvProblem, y_last: Array) -> Array:
    """(N, *out, K) -> (N, K, *out): a view in channels-last memory, a copy in channels first."""
    xp = namespace(y_last)
    moved = xp.permute_dims(y_last, (0, 1 + p.rank, *range(1, 1 + p.rank)))
    return moved if p.channels_last else contiguous(moved)


def _tap(p: ConvProblem, x_pad: Array, tap: tuple[int, ...]) -> Array:
    """(N, *out, C): the pixels kernel tap `tap` reads, one per output position (a view)."""
    index = tuple(slice(t * d, t * d + (o - 1) * s + 1, s) for t, d, o, s in zip(
        tap, p.dilation, p.out_size, p.stride, strict=True))
    return x_pad[(slice(None), *index, slice(None))]


def _tap_weights(p: ConvProblem, w: Array) -> Array:
    """w (K, C/g, *kernel) as (*kernel, G, C/g, K/g): one (C/g x K/g) matrix per tap and group."""
    xp, g = namespace(w), p.groups
    grouped = xp.reshape(w, (g, p.k // g, p.c // g, *p.kernel))
    order = (*range(3, 3 + p.rank), 0, 2, 1)
    return contiguous(xp.permute_dims(grouped, order))


def direct(p: ConvProblem, x: Array, w: Array) -> Array:
    """One channel GEMM per kernel tap over all output positions, accumulated: (N, K, *out)."""
    xp = namespace(x, w)
    g, cg, kg, rows = p.groups, p.c // p.groups, p.k // p.groups, p.n * p.pixels
    x_pad, taps = padded(p, spatial_last(p, x)), _tap_weights(p, w)
    y = xp.zeros((g, rows, kg), dtype=x.dtype, device=device(x))
    for tap in itertools.product(*(range(k) for k in p.kernel)):
        pixels = xp.reshape(_tap(p, x_pad, tap), (rows, g, cg))  # a copy unless contiguous
        y += xp.matmul(xp.permute_dims(pixels, (1, 0, 2)), taps[tap])  # (G, rows, K/g)
    y = xp.reshape(contiguous(xp.permute_dims(y, (1, 0, 2))), (p.n, *p.out_size, p.k))
    return channels_first(p, y)


def columns(p: ConvProblem, x: Array) -> Array:
    """(G, N*prod(out), prod(kernel)*C/g): every window unfolded (vol2col), one copy."""
    xp = namespace(x)
    x_pad = padded(p, spatial_last(p, x))
    strides = array_strides(x_pad)
    spatial = strides[1:-1]
    shape = (p.n, *p.out_size, *p.kernel, p.groups, p.c // p.groups)
    view = strided(x_pad, shape, (
        strides[0], *(s * t for s, t in zip(p.stride, spatial, strict=True)),
        *(d * t for d, t in zip(p.dilation, spatial, strict=True)),
        strides[-1] * (p.c // p.groups), strides[-1]))
    rank = p.rank
    order = (1 + 2 * rank, 0, *range(1, 1 + rank), *range(1 + rank, 1 + 2 * rank), 2 + 2 * rank)
    return xp.reshape(xp.permute_dims(view, order),
                      (p.groups, p.n * p.pixels, math.prod(p.kernel) * (p.c // p.groups)))


def im2col(p: ConvProblem, x: Array, w: Array) -> Array:
    """The unfolded windows times the weights, one GEMM per group: (N, K, *out)."""
    xp = namespace(x, w)
    g, kg = p.groups, p.k // p.groups
    weights = xp.reshape(_tap_weights(p, w), (math.prod(p.kernel), g, p.c // g, kg))
    weights = xp.reshape(contiguous(xp.permute_dims(weights, (1, 0, 2, 3))), (g, -1, kg))
    y = xp.matmul(columns(p, x), weights)  # (G, N*out, K/g)
    y = xp.reshape(contiguous(xp.permute_dims(y, (1, 0, 2))), (p.n, *p.out_size, p.k))
    return channels_first(p, y)


def workspace_elements(p: ConvProblem, unfolded: bool) -> int:
    """The copies these paths make: the permuted (channels first) and padded input, the
    columns (im2col) or one tap's pixels and product (direct), the result before its layout."""
    inputs = math.prod(p.input_shape)
    padded_input = p.n * p.c * math.prod(s + b + e for s, b, e in zip(
        p.size, p.padding, p.padding_after, strict=True))
    output = p.n * p.k * p.pixels
    work = (p.n * p.pixels * math.prod(p.kernel) * p.c if unfolded
            else p.n * p.pixels * (p.c + p.k))
    return (0 if p.channels_last else inputs) + padded_input + work + output


def cost_s(p: ConvProblem, unfolded: bool) -> float:
    """The permute (channels first only) and padding copies; then per tap a copy of its pixels
    and one channel GEMM per group (direct), or one copy of every window and one GEMM per
    group (im2col); then the result's copy into channels first (channels first only)."""
    from convbench.algorithms import cost  # the machine model (imported on use)

    g, kg, cg, rows, item = p.groups, p.k // p.groups, p.c // p.groups, p.n * p.pixels, p.itemsize
    taps = math.prod(p.kernel)
    layout = 0.0 if p.channels_last else (cost.copy_s(math.prod(p.input_shape), item, p.c)
                                          + cost.copy_s(p.n * p.k * p.pixels, item, p.k))
    if unfolded:
        work = (cost.copy_s(rows * taps * p.c, item, p.c)
                + cost.gemm_s(rows, kg, taps * cg, item, batch=g))
    else:
        work = taps * (cost.copy_s(rows * p.c, item, p.c) + cost.gemm_s(rows, kg, cg, item,
                                                                        batch=g)
                       + cost.copy_s(3 * rows * p.k, item) + cost.calls_s(3))
    return layout + cost.padding_s(p) + work + cost.calls_s(8)
