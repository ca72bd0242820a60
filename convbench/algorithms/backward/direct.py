"""Direct backward passes: no column buffer, like the forward `direct`.

bwd_data is the convolution of the gradient with the flipped kernel: grad_out, dilated by the
stride (S-1 zeros between pixels) and padded by d(K-1) - P, convolved at stride 1 with the
kernel flipped in R and S and with its channel axes swapped, by the forward `direct` itself.
It does S_h*S_w times the useful MACs on strided layers (the zeros), the price of reusing the
forward. bwd_weight is the correlation of the input with the gradient, one GEMM per kernel tap:
grad_w[:, :, r, s] = grad_out . tap(r, s) over N*OH*OW.
"""

from __future__ import annotations

import numpy as np

from convbench.algorithms.conv import direct
from convbench.algorithms.backward.common import register_pair
from convbench.algorithms.windows import pad, tap
from convbench.problems import ConvProblem


def flipped_problem(p: ConvProblem) -> ConvProblem:
    """The stride-1 forward conv from the dilated, padded gradient (N, K, H+eh-1, W+ew-1) to
    grad_x (N, C, H, W): kernel R x S, dilation d, the groups of p."""
    eh, ew = p.kernel_extent
    return ConvProblem(p.n, p.k, p.h + eh - 1, p.w + ew - 1, p.c, p.r, p.s,
                       dilation=p.dilation, groups=p.groups, dtype=p.dtype)


def flipped_weights(p: ConvProblem, w: np.ndarray) -> np.ndarray:
    """(K, C/g, R, S) -> (C, K/g, R, S): each group's channel axes swapped, taps reversed."""
    g, cg, kg = p.groups, p.c // p.groups, p.k // p.groups
    swapped = w.reshape(g, kg, cg, p.r, p.s).transpose(0, 2, 1, 3, 4)[..., ::-1, ::-1]
    return np.ascontiguousarray(swapped).reshape(p.c, kg, p.r, p.s)


def _inside(offset: int, stride: int, count: int, size: int) -> tuple[int, int]:
    """[first, stop) of the i < count with 0 <= offset + i*stride < size."""
    first = 0 if offset >= 0 else -(offset // stride)
    return first, max(first, min(count, (size - 1 - offset) // stride + 1))


def dilated_gradient(p: ConvProblem, grad_out: np.ndarray) -> np.ndarray:
    """grad_out spread to every S-th pixel of (N, K, H+eh-1, W+ew-1), shifted by d(K-1) - P;
    pixels whose windows lie wholly in the padding fall outside and are dropped."""
    (eh, ew), (ph, pw), (sh, sw) = p.kernel_extent, p.padding, p.stride
    out = np.zeros((p.n, p.k, p.h + eh - 1, p.w + ew - 1), dtype=grad_out.dtype)
    at_h, at_w = eh - 1 - ph, ew - 1 - pw  # where output pixel (0, 0) lands
    i0, i1 = _inside(at_h, sh, p.out_h, out.shape[2])
    j0, j1 = _inside(at_w, sw, p.out_w, out.shape[3])
    if i1 == i0 or j1 == j0:
        return out
    rows = slice(at_h + i0 * sh, at_h + (i1 - 1) * sh + 1, sh)
    cols = slice(at_w + j0 * sw, at_w + (j1 - 1) * sw + 1, sw)
    out[:, :, rows, cols] = grad_out[:, :, i0:i1, j0:j1]
    return out


def backward_data(p: ConvProblem, grad_out: np.ndarray, w: np.ndarray) -> np.ndarray:
    q = flipped_problem(p)
    return direct.conv2d_direct(q, dilated_gradient(p, grad_out), flipped_weights(p, w), None)


def backward_weight(p: ConvProblem, grad_out: np.ndarray, x: np.ndarray) -> np.ndarray:
    g, cg, kg, rows = p.groups, p.c // p.groups, p.k // p.groups, p.n * p.out_h * p.out_w
    x_pad = pad(x, p.padding)
    grad = grad_out.reshape(p.n, g, kg, -1).transpose(1, 2, 0, 3).reshape(g, kg, rows)  # copy
    grad_w = np.empty((p.r, p.s, g, kg, cg), dtype=x.dtype)
    for r in range(p.r):
        for s in range(p.s):
            pixels = tap(x_pad, p, r, s).reshape(p.n, g, cg, -1)  # (N, G, C/g, OH*OW), copy
            pixels = pixels.transpose(1, 0, 3, 2).reshape(g, rows, cg)  # (G, N*OH*OW, C/g)
            np.matmul(grad, pixels, out=grad_w[r, s])  # (G, K/g, C/g)
    return np.ascontiguousarray(grad_w.transpose(2, 3, 4, 0, 1)).reshape(p.weight_shape)


def workspace_bytes(p: ConvProblem) -> int:
    """bwd_data: the dilated gradient, the flipped weights and the forward direct's workspace;
    bwd_weight: the padded input, the reordered gradient, one tap twice and grad_w's taps."""
    if p.direction == "bwd_data":
        q = flipped_problem(p)
        elements = p.n * q.c * q.h * q.w + p.k * p.reduction_length
        return elements * p.itemsize + direct.workspace_bytes(q)
    padded = p.n * p.c * (p.h + 2 * p.padding[0]) * (p.w + 2 * p.padding[1])
    pixels = p.n * p.out_h * p.out_w
    elements = (padded if p.padding != (0, 0) else 0) + pixels * (p.k + 2 * p.c)
    return (elements + p.k * p.reduction_length) * p.itemsize


register_pair(
    "direct", backward_data, backward_weight, workspace_bytes,
    ("bwd_data: dilated gradient conv flipped kernel; bwd_weight: one GEMM per tap",
     "input-dilated direct convolution with the flipped kernel"),
)
