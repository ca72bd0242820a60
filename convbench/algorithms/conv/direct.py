"""Direct convolution by kernel taps: for each (r, s), one channel contraction accumulated into y.

No im2col buffer: the largest temporary is one tap's input slice, 1/(R*S) of what im2col unfolds.
"""

from __future__ import annotations

from convbench.algorithms import cost
from convbench.algorithms.windows import add_bias, pad, windows
from convbench.backends import ARRAY_API_BACKENDS
from convbench.algorithms.conv import channels_last, depthwise_kernels
from convbench.problems import LAYOUTS, ConvProblem
from convbench.algorithms.registry import register
from convbench.backends.xp import Array, contiguous, device, matmul_into, namespace, reshape_copy


def workspace_bytes(p: ConvProblem) -> int:
    """Padded input (if padded) + one tap's slice + one tap's product + the reordered weights;
    outside 2-D channels first, the channels-last path's copies; a depthwise layer on numpy
    arrays, its compiled kernels' (depthwise_kernels)."""
    if depthwise_kernels.modelled(p):
        return depthwise_kernels.workspace_bytes(p)
    if not _planar(p):
        return channels_last.workspace_elements(p, unfolded=False) * p.itemsize
    padded = p.n * p.c * (p.h + 2 * p.padding[0]) * (p.w + 2 * p.padding[1])
    tap = p.n * p.c * p.out_h * p.out_w
    product = p.n * p.k * p.out_h * p.out_w
    weights = p.k * p.reduction_length
    elements = (padded if p.padding != (0, 0) else 0) + tap + product + weights
    return elements * p.itemsize


def cost_s(p: ConvProblem) -> float:
    """Per kernel tap: the tap's slice copied (N*C*OH*OW items, runs of OW), one channel GEMM
    per image and group, and the product added into y (three streams of the output's size); a
    depthwise layer on numpy arrays, its compiled kernels' cost."""
    if depthwise_kernels.modelled(p):
        return depthwise_kernels.cost_s(p)
    return array_cost_s(p)


def array_cost_s(p: ConvProblem) -> float:
    """cost_s of the array version, which every problem but a depthwise one on numpy arrays
    runs (and the backward passes, whatever the problem: backward/direct.py)."""
    if not _planar(p):
        return channels_last.cost_s(p, unfolded=False)
    g, kg, cg, pixels = p.groups, p.k // p.groups, p.c // p.groups, p.out_h * p.out_w
    tap = cost.copy_s(p.n * p.c * pixels, p.itemsize, p.out_w)
    gemm = cost.gemm_s(kg, pixels, cg, p.itemsize, batch=p.n * g)
    accumulate = cost.copy_s(3 * p.n * p.k * pixels, p.itemsize)
    per_tap = tap + gemm + accumulate + cost.calls_s(3)
    weights = cost.copy_s(p.k * p.reduction_length, p.itemsize, p.c // p.groups)
    return cost.padding_s(p) + weights + p.r * p.s * per_tap + cost.calls_s(6)


def _planar(p: ConvProblem) -> bool:
    """A 2-D channels-first problem: the NCHW path below; every other one runs channels last
    (convbench.algorithms.conv.channels_last)."""
    return p.rank == 2 and not p.channels_last


@register(
    "conv2d", "direct", backends=ARRAY_API_BACKENDS, exact=True,
    workspace_bytes=workspace_bytes, cost_s=cost_s, ranks=(2, 3), layouts=LAYOUTS,
    summary="one channel GEMM per kernel tap, accumulated; no im2col buffer; channels last "
    "natively, 1-D to 3-D",
)
def conv2d_direct(p: ConvProblem, x: Array, w: Array, bias: Array | None) -> Array:
    if depthwise_kernels.applies(p, x, w, bias):  # one input channel a group: compiled kernels
        return depthwise_kernels.convolution(p, x, w, bias)
    if not _planar(p):
        return add_bias(channels_last.direct(p, x, w), bias)
    xp = namespace(x, w)
    g, cg, kg = p.groups, p.c // p.groups, p.k // p.groups
    n, pixels = p.n, p.out_h * p.out_w
    win = windows(pad(x, p.padding), p)  # (N, C, R, S, OH, OW) view
    taps = contiguous(xp.permute_dims(xp.reshape(w, (g, kg, cg, p.r, p.s)), (3, 4, 0, 1, 2)))
    y = xp.zeros((n, g, kg, pixels), dtype=x.dtype, device=device(x))
    product = xp.empty_like(y)
    tap = xp.empty((n, g, cg, pixels), dtype=x.dtype, device=device(x))
    for r in range(p.r):
        for s in range(p.s):
            tap = reshape_copy(win[:, :, r, s, ...], (n, g, cg, pixels), tap)  # (N, G, C/g, OH*OW)
            product = matmul_into(taps[r, s, ...], tap, product)  # (G, K/g, C/g) @ -> (N, G, K/g, .)
            y += product
    return add_bias(xp.reshape(y, p.output_shape), bias)
