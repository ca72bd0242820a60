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
from convbench.backends.xp import matmul, pad_constant
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
        y += matmul(xp.permute_dims(pixels, (1, 0, 2)), taps[tap])  # (G, rows, K/g)
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
    y = matmul(columns(p, x), weights)  # (G, N*out, K/g)
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


# --- the backward passes ------------------------------------------------------------------------
def _gradient_rows(p: ConvProblem, grad_out: Array) -> Array:
    """grad_out (N, K, *out) as (G, N*prod(out), K/g): one row per output position."""
    xp, g = namespace(grad_out), p.groups
    moved = xp.permute_dims(grad_out, (0, *range(2, 2 + p.rank), 1))  # (N, *out, K)
    rows = xp.reshape(moved, (p.n * p.pixels, g, p.k // g))  # a copy unless channels last
    return contiguous(xp.permute_dims(rows, (1, 0, 2)))


def _weights_from_taps(p: ConvProblem, per_tap: Array) -> Array:
    """(*kernel, G, C/g, K/g) -> w's shape (K, C/g, *kernel)."""
    xp = namespace(per_tap)
    order = (p.rank, p.rank + 2, p.rank + 1, *range(p.rank))  # (G, K/g, C/g, *kernel)
    return xp.reshape(contiguous(xp.permute_dims(per_tap, order)), p.weight_shape)


def _taps(p: ConvProblem) -> list[tuple[int, ...]]:
    return list(itertools.product(*(range(k) for k in p.kernel)))


def backward_weight(p: ConvProblem, grad_out: Array, x: Array, unfolded: bool) -> Array:
    """grad_w = the input correlated with the gradient over N*prod(out): one GEMM per tap
    (direct) or one GEMM with the unfolded windows (im2col)."""
    xp = namespace(grad_out, x)
    g, cg, kg, rows = p.groups, p.c // p.groups, p.k // p.groups, p.n * p.pixels
    grad_t = xp.permute_dims(_gradient_rows(p, grad_out), (0, 2, 1))  # (G, K/g, rows)
    if unfolded:
        grad_w = matmul(grad_t, columns(p, x))  # (G, K/g, taps*C/g)
        per_tap = xp.reshape(grad_w, (g, kg, *p.kernel, cg))
        order = (*range(2, 2 + p.rank), 0, 2 + p.rank, 1)
        return _weights_from_taps(p, xp.permute_dims(per_tap, order))
    x_pad = padded(p, spatial_last(p, x))
    per_tap = xp.empty((*p.kernel, g, cg, kg), dtype=x.dtype, device=device(x))
    for tap in _taps(p):
        pixels = xp.permute_dims(xp.reshape(_tap(p, x_pad, tap), (rows, g, cg)), (1, 0, 2))
        per_tap[tap] = xp.permute_dims(matmul(grad_t, pixels), (0, 2, 1))  # (G, C/g, K/g)
    return _weights_from_taps(p, per_tap)


def backward_data(p: ConvProblem, grad_out: Array, w: Array, unfolded: bool) -> Array:
    """grad_x: each tap's share of the gradient (grad . w_tap^T) scatter-added into the padded
    input's gradient at the pixels the tap read (col2im); by one GEMM for every tap (im2col)
    or one per tap (direct). Channels last throughout; cropped, then channels first."""
    xp = namespace(grad_out, w)
    g, cg, kg, rows = p.groups, p.c // p.groups, p.k // p.groups, p.n * p.pixels
    grad = _gradient_rows(p, grad_out)  # (G, rows, K/g)
    taps = _tap_weights(p, w)  # (*kernel, G, C/g, K/g)
    sizes = tuple(s + b + e for s, b, e in zip(p.size, p.padding, p.padding_after, strict=True))
    grad_pad = xp.zeros((p.n, *sizes, p.c), dtype=grad_out.dtype, device=device(grad_out))
    if unfolded:
        every = xp.reshape(xp.permute_dims(taps, (p.rank, p.rank + 2, *range(p.rank),
                                                  p.rank + 1)), (g, kg, -1))
        shares = xp.reshape(matmul(grad, every), (g, rows, len(_taps(p)), cg))
    for i, tap in enumerate(_taps(p)):
        share = shares[:, :, i, :] if unfolded else matmul(
            grad, xp.permute_dims(taps[tap], (0, 2, 1)))  # (G, rows, C/g)
        share = xp.reshape(xp.permute_dims(share, (1, 0, 2)), (p.n, *p.out_size, p.c))
        index = (slice(None), *(slice(t * d, t * d + (o - 1) * s + 1, s) for t, d, o, s in zip(
            tap, p.dilation, p.out_size, p.stride, strict=True)), slice(None))
        grad_pad[index] += share
    inside = (slice(None), *(slice(b, b + s) for b, s in zip(p.padding, p.size, strict=True)),
              slice(None))
    grad_x = grad_pad[inside]  # (N, *size, C)
    moved = xp.permute_dims(grad_x, (0, 1 + p.rank, *range(1, 1 + p.rank)))
    return moved if p.channels_last else contiguous(moved)


def backward_workspace_elements(p: ConvProblem, unfolded: bool) -> int:
    """The backward paths' copies: the gradient's rows; bwd_data the padded input gradient
    (channels last), the shares (every tap's with im2col, one tap's with direct) and the result
    in channels first; bwd_weight the padded input (permuted in channels first) and the columns
    (im2col) or one tap's pixels (direct), and the weights' taps."""
    rows = p.n * p.pixels
    padded_input = p.n * p.c * math.prod(s + b + e for s, b, e in zip(
        p.size, p.padding, p.padding_after, strict=True))
    taps = math.prod(p.kernel)
    pixels = rows * p.c * (taps if unfolded else 1)
    first = 0 if p.channels_last else math.prod(p.input_shape)
    if p.direction == "bwd_data":
        return rows * p.k + padded_input + pixels + first
    return rows * p.k + padded_input + first + pixels + 2 * p.k * p.reduction_length
