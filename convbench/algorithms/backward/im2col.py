"""im2col backward passes: one GEMM per group, as the forward `im2col`.

bwd_data is col2im: columns = w^T . grad_out, (G, R*S*C/g, N, OH*OW), then each kernel tap's
rows are scatter-added into the padded input gradient (the adjoint of im2col's gather).
bwd_weight unfolds the input exactly as the forward does and multiplies: grad_w = grad_out .
columns^T. A 1x1 stride-1 unpadded problem needs neither unfold nor col2im: plain GEMMs.
"""

from __future__ import annotations

from convbench.algorithms.backward.common import cropped, gradient_rows, padded_zeros
from convbench.algorithms.backward.common import forward_cost, register_pair
from convbench.algorithms.windows import tap_index
from convbench.algorithms.conv import im2col as conv_im2col
from convbench.algorithms.conv.im2col import is_pointwise, unfold
from convbench.backends.xp import Array, contiguous, matmul, namespace
from convbench.algorithms.conv import channels_last
from convbench.problems import LAYOUTS, ConvProblem


def _col2im(p: ConvProblem, grad_out: Array, w: Array) -> Array:
    xp = namespace(grad_out, w)
    g, cg, kg = p.groups, p.c // p.groups, p.k // p.groups
    taps_first = xp.permute_dims(xp.reshape(w, (g, kg, cg, p.r, p.s)), (0, 3, 4, 2, 1))
    w_t = xp.reshape(contiguous(taps_first), (g, p.r * p.s * cg, kg))  # (G, R*S*C/g, K/g)
    columns = matmul(w_t, xp.reshape(grad_out, (p.n, g, kg, -1)))  # (N, G, R*S*C/g, OH*OW)
    columns = xp.reshape(columns, (p.n, g, p.r, p.s, cg, p.out_h, p.out_w))
    grad_pad = padded_zeros(p, grad_out)  # (N, G, C/g, H + 2P, W + 2P)
    for r in range(p.r):
        for s in range(p.s):
            grad_pad[tap_index(p, r, s)] += columns[:, :, r, s, ...]  # (N, G, C/g, OH, OW)
    return cropped(p, grad_pad)


def _planar(p: ConvProblem) -> bool:
    """A 2-D channels-first problem: the NCHW passes here; every other one runs channels last
    (convbench.algorithms.conv.channels_last)."""
    return p.rank == 2 and not p.channels_last


def backward_data(p: ConvProblem, grad_out: Array, w: Array) -> Array:
    if not _planar(p):
        return channels_last.backward_data(p, grad_out, w, unfolded=True)
    if not is_pointwise(p):
        return _col2im(p, grad_out, w)
    xp = namespace(grad_out, w)
    g, cg, kg = p.groups, p.c // p.groups, p.k // p.groups
    w_t = xp.permute_dims(xp.reshape(w, (g, kg, cg)), (0, 2, 1))  # (G, C/g, K/g)
    grad_x = matmul(w_t, xp.reshape(grad_out, (p.n, g, kg, -1)))  # (N, G, C/g, H*W)
    return xp.reshape(grad_x, p.input_shape)


def backward_weight(p: ConvProblem, grad_out: Array, x: Array) -> Array:
    if not _planar(p):
        return channels_last.backward_weight(p, grad_out, x, unfolded=True)
    xp = namespace(grad_out, x)
    g, kg = p.groups, p.k // p.groups
    if is_pointwise(p):
        # x_rows (N, G, H*W, C/g): a view of x
        x_rows = xp.permute_dims(xp.reshape(x, (p.n, g, -1, p.h * p.w)), (0, 1, 3, 2))
        grad_w = matmul(xp.reshape(grad_out, (p.n, g, kg, -1)), x_rows)  # (N, G, K/g, C/g)
        return xp.reshape(xp.sum(grad_w, axis=0), p.weight_shape)
    grad = gradient_rows(p, grad_out)  # (G, K/g, N*OH*OW), a copy
    grad_w = matmul(grad, xp.permute_dims(unfold(p, x), (0, 2, 1)))  # (G, K/g, C/g*R*S)
    return xp.reshape(grad_w, p.weight_shape)


def workspace_bytes(p: ConvProblem) -> int:
    """bwd_data: the tap-major copy of the weights, the columns and the padded gradient;
    bwd_weight: the reordered gradient, the padded input (if padded) and the columns. 1x1
    stride 1: the GEMMs' results only. Outside 2-D channels first, the channels-last passes'
    copies."""
    if not _planar(p):
        return channels_last.backward_workspace_elements(p, unfolded=True) * p.itemsize
    padded = p.n * p.c * (p.h + 2 * p.padding[0]) * (p.w + 2 * p.padding[1])
    columns = p.c * p.r * p.s * p.n * p.out_h * p.out_w
    if is_pointwise(p):
        return (0 if p.direction == "bwd_data" else p.n * p.k * p.reduction_length) * p.itemsize
    if p.direction == "bwd_data":
        weights = p.k * (p.c // p.groups) * p.r * p.s
        return (weights + columns + padded) * p.itemsize
    gradient = p.n * p.k * p.out_h * p.out_w
    return ((padded if p.padding != (0, 0) else 0) + columns + gradient) * p.itemsize


register_pair(
    "im2col", backward_data, backward_weight, workspace_bytes,
    ("bwd_data: GEMM then col2im scatter-add; bwd_weight: unfold then one GEMM",
     "GEMM then col2im scatter-add (the adjoint conv's bwd_data)"),
    cost_s=forward_cost(conv_im2col.cost_s), ranks=(2, 3), layouts=LAYOUTS,
)
