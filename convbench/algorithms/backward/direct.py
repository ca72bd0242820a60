"""Direct backward passes: no column buffer, like the forward `direct`.

bwd_data is the convolution of the gradient with the flipped kernel: grad_out, dilated by the
stride (S-1 zeros between pixels) and padded by d(K-1) - P, convolved at stride 1 with the
kernel flipped in R and S and with its channel axes swapped, by the forward `direct` itself.
It does S_h*S_w times the useful MACs on strided layers (the zeros), the price of reusing the
forward. bwd_weight is the correlation of the input with the gradient, one GEMM per kernel tap:
grad_w[:, :, r, s] = grad_out . tap(r, s) over N*OH*OW.
"""

from __future__ import annotations

import math

from convbench.algorithms.conv import direct
from convbench.algorithms.backward.common import forward_cost, gradient_rows, register_pair
from convbench.algorithms.windows import pad, tap
from convbench.backends.xp import Array, contiguous, device, matmul_into_part, namespace
from convbench.algorithms.conv import channels_last
from convbench.problems import LAYOUTS, ConvProblem


def flipped_problem(p: ConvProblem) -> ConvProblem:
    """The stride-1 forward conv from the dilated, padded gradient (N, K, *(size + extent - 1))
    to grad_x (N, C, *size): p's kernel, dilation, groups and layout, at any rank."""
    size = tuple(i + e - 1 for i, e in zip(p.size, p.kernel_extent, strict=True))
    return ConvProblem(p.n, p.k, k=p.c, size=size, kernel=p.kernel, dilation=p.dilation,
                       groups=p.groups, dtype=p.dtype, layout=p.layout)


def flipped_weights(p: ConvProblem, w: Array) -> Array:
    """(K, C/g, *kernel) -> (C, K/g, *kernel): each group's channel axes swapped, taps reversed
    along every spatial axis."""
    xp = namespace(w)
    g, cg, kg, rank = p.groups, p.c // p.groups, p.k // p.groups, p.rank
    grouped = xp.reshape(w, (g, kg, cg, *p.kernel))
    swapped = xp.permute_dims(grouped, (0, 2, 1, *range(3, 3 + rank)))
    flipped = xp.flip(swapped, axis=tuple(range(3, 3 + rank)))  # a view in numpy
    return xp.reshape(contiguous(flipped), (p.c, kg, *p.kernel))


def _inside(offset: int, stride: int, count: int, size: int) -> tuple[int, int]:
    """[first, stop) of the i < count with 0 <= offset + i*stride < size."""
    first = 0 if offset >= 0 else -(offset // stride)
    return first, max(first, min(count, (size - 1 - offset) // stride + 1))


def dilated_gradient(p: ConvProblem, grad_out: Array) -> Array:
    """grad_out spread to every S-th pixel of (N, K, *(size + extent - 1)), shifted by
    d(K-1) - P on each axis; pixels whose windows lie wholly in the padding fall outside and
    are dropped."""
    shape = (p.n, p.k, *(i + e - 1 for i, e in zip(p.size, p.kernel_extent, strict=True)))
    out = namespace(grad_out).zeros(shape, dtype=grad_out.dtype, device=device(grad_out))
    targets, sources = [], []
    for extent, padding, stride, count, size in zip(p.kernel_extent, p.padding, p.stride,
                                                    p.out_size, shape[2:], strict=True):
        at = extent - 1 - padding  # where output pixel 0 lands
        first, stop = _inside(at, stride, count, size)
        if stop == first:
            return out
        targets.append(slice(at + first * stride, at + (stop - 1) * stride + 1, stride))
        sources.append(slice(first, stop))
    out[(slice(None), slice(None), *targets)] = grad_out[(slice(None), slice(None), *sources)]
    return out


def _planar(p: ConvProblem) -> bool:
    """A 2-D channels-first problem: the NCHW passes here; every other one runs channels last
    (convbench.algorithms.conv.channels_last)."""
    return p.rank == 2 and not p.channels_last


def backward_data(p: ConvProblem, grad_out: Array, w: Array) -> Array:
    if not _planar(p):
        return channels_last.backward_data(p, grad_out, w, unfolded=False)
    q = flipped_problem(p)
    return direct.conv2d_direct(q, dilated_gradient(p, grad_out), flipped_weights(p, w), None)


def backward_weight(p: ConvProblem, grad_out: Array, x: Array) -> Array:
    if not _planar(p):
        return channels_last.backward_weight(p, grad_out, x, unfolded=False)
    xp = namespace(grad_out, x)
    g, cg, kg, rows = p.groups, p.c // p.groups, p.k // p.groups, p.n * p.out_h * p.out_w
    x_pad = pad(x, p.padding)
    grad = gradient_rows(p, grad_out)  # (G, K/g, N*OH*OW), a copy
    grad_w = xp.empty((p.r, p.s, g, kg, cg), dtype=x.dtype, device=device(x))
    for r in range(p.r):
        for s in range(p.s):
            pixels = xp.reshape(tap(x_pad, p, r, s), (p.n, g, cg, -1))  # (N, G, C/g, OH*OW), copy
            pixels = xp.reshape(xp.permute_dims(pixels, (1, 0, 3, 2)), (g, rows, cg))  # copy
            matmul_into_part(grad, pixels, grad_w, (r, s, ...), (g, kg, cg))  # (G, K/g, C/g)
    grad_w = contiguous(xp.permute_dims(grad_w, (2, 3, 4, 0, 1)))  # (G, K/g, C/g, R, S)
    return xp.reshape(grad_w, p.weight_shape)


def workspace_bytes(p: ConvProblem) -> int:
    """bwd_data: the dilated gradient, the flipped weights and the forward direct's workspace;
    bwd_weight: the padded input, the reordered gradient, one tap twice and grad_w's taps.
    Outside 2-D channels first, the channels-last passes' copies."""
    if not _planar(p):
        return channels_last.backward_workspace_elements(p, unfolded=False) * p.itemsize
    if p.direction == "bwd_data":
        q = flipped_problem(p)
        elements = p.n * q.c * math.prod(q.size) + p.k * p.reduction_length
        return elements * p.itemsize + direct.workspace_bytes(q)  # the kernels' if depthwise
    padded = p.n * p.c * (p.h + 2 * p.padding[0]) * (p.w + 2 * p.padding[1])
    pixels = p.n * p.out_h * p.out_w
    elements = (padded if p.padding != (0, 0) else 0) + pixels * (p.k + 2 * p.c)
    return (elements + p.k * p.reduction_length) * p.itemsize


register_pair(
    "direct", backward_data, backward_weight, workspace_bytes,
    ("bwd_data: dilated gradient conv flipped kernel; bwd_weight: one GEMM per tap",
     "input-dilated direct convolution with the flipped kernel"),
    cost_s=forward_cost(direct.array_cost_s), ranks=(2, 3), layouts=LAYOUTS,
)
