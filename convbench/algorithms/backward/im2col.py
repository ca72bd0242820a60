"""im2col backward passes: one GEMM per group, as the forward `im2col`.

bwd_data is col2im: columns = w^T . grad_out, (G, R*S*C/g, N, OH*OW), then each kernel tap's
rows are scatter-added into the padded input gradient (the adjoint of im2col's gather).
bwd_weight unfolds the input exactly as the forward does and multiplies: grad_w = grad_out .
columns^T. A 1x1 stride-1 unpadded problem needs neither unfold nor col2im: plain GEMMs.
"""

from __future__ import annotations

import numpy as np

from convbench.algorithms.backward.common import padded_zeros, register_pair
from convbench.algorithms.windows import crop, tap
from convbench.algorithms.conv.im2col import is_pointwise, unfold
from convbench.problems import ConvProblem


def _col2im(p: ConvProblem, grad_out: np.ndarray, w: np.ndarray) -> np.ndarray:
    g, cg, kg = p.groups, p.c // p.groups, p.k // p.groups
    taps_first = w.reshape(g, kg, cg, p.r, p.s).transpose(0, 3, 4, 2, 1)  # (G, R, S, C/g, K/g)
    w_t = np.ascontiguousarray(taps_first).reshape(g, p.r * p.s * cg, kg)
    columns = np.matmul(w_t, grad_out.reshape(p.n, g, kg, -1))  # (N, G, R*S*C/g, OH*OW)
    columns = columns.reshape(p.n, g, p.r, p.s, cg, p.out_h, p.out_w)
    grad_pad = padded_zeros(p, grad_out.dtype)  # (N, C, H + 2P, W + 2P)
    for r in range(p.r):
        for s in range(p.s):
            pixels = tap(grad_pad, p, r, s).reshape(p.n, g, cg, p.out_h, p.out_w)  # a view
            pixels += columns[:, :, r, s]
    return np.ascontiguousarray(crop(grad_pad, p))


def backward_data(p: ConvProblem, grad_out: np.ndarray, w: np.ndarray) -> np.ndarray:
    if not is_pointwise(p):
        return _col2im(p, grad_out, w)
    g, cg, kg = p.groups, p.c // p.groups, p.k // p.groups
    w_t = w.reshape(g, kg, cg).transpose(0, 2, 1)  # (G, C/g, K/g)
    return np.matmul(w_t, grad_out.reshape(p.n, g, kg, -1)).reshape(p.input_shape)


def backward_weight(p: ConvProblem, grad_out: np.ndarray, x: np.ndarray) -> np.ndarray:
    g, kg = p.groups, p.k // p.groups
    if is_pointwise(p):
        x_rows = x.reshape(p.n, g, -1, p.h * p.w).swapaxes(2, 3)  # (N, G, H*W, C/g), a view
        grad_w = np.matmul(grad_out.reshape(p.n, g, kg, -1), x_rows).sum(axis=0)
        return grad_w.reshape(p.weight_shape)
    grad = grad_out.reshape(p.n, g, kg, -1).transpose(1, 2, 0, 3).reshape(g, kg, -1)  # copy
    grad_w = np.matmul(grad, unfold(p, x).transpose(0, 2, 1))  # (G, K/g, C/g*R*S)
    return grad_w.reshape(p.weight_shape)


def workspace_bytes(p: ConvProblem) -> int:
    """bwd_data: the tap-major copy of the weights, the columns and the padded gradient;
    bwd_weight: the reordered gradient, the padded input (if padded) and the columns. 1x1
    stride 1: the GEMMs' results only."""
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
)
