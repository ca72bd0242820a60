"""The textbook convolution: a loop over output positions, each a window-times-kernel sum.

Slow by design: it is what a course writes first. One Python iteration per output pixel and group.
"""

from __future__ import annotations

import numpy as np

from convbench.algorithms import cost
from convbench.algorithms.windows import add_bias, pad
from convbench.problems import ConvProblem
from convbench.algorithms.registry import register

# Cost model for the harness's budget check: Python overhead per (pixel, group) iteration plus
# the MACs at a modest rate. Deliberately pessimistic, so that a skipped case would truly be slow.
_SECONDS_PER_ITERATION = 2e-5
_MACS_PER_SECOND = 1e9


def estimate_s(p: ConvProblem) -> float:
    return p.out_h * p.out_w * p.groups * _SECONDS_PER_ITERATION + p.macs / _MACS_PER_SECOND


def cost_s(p: ConvProblem) -> float:
    """Per output pixel and group: a window slice, one small tensordot (N x C/g*R*S) @
    (C/g*R*S x K/g) and its store, each a few array calls."""
    g, kg, cg = p.groups, p.k // p.groups, p.c // p.groups
    per_group = cost.gemm_s(p.n, kg, cg * p.r * p.s, p.itemsize) + cost.calls_s(4)
    return cost.padding_s(p) + p.out_h * p.out_w * (g * per_group + cost.calls_s(1))


def workspace_bytes(p: ConvProblem) -> int:
    padded = p.n * p.c * (p.h + 2 * p.padding[0]) * (p.w + 2 * p.padding[1])
    return (padded if p.padding != (0, 0) else 0) * p.itemsize


@register(
    "conv2d", "direct_naive", exact=True, estimate_s=estimate_s, workspace_bytes=workspace_bytes,
    cost_s=cost_s, role="teaching",
    summary="loops over output positions; for teaching",
)
def conv2d_direct_naive(
    p: ConvProblem, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None
) -> np.ndarray:
    x_pad = pad(x, p.padding)
    (sh, sw), (dh, dw) = p.stride, p.dilation
    eh, ew = p.kernel_extent
    cg, kg = p.c // p.groups, p.k // p.groups
    y = np.empty(p.output_shape, dtype=x.dtype)
    for i in range(p.out_h):
        for j in range(p.out_w):
            patch = x_pad[:, :, i * sh : i * sh + eh : dh, j * sw : j * sw + ew : dw]  # (N, C, R, S)
            for g in range(p.groups):
                x_g = patch[:, g * cg : (g + 1) * cg]  # (N, C/g, R, S)
                w_g = w[g * kg : (g + 1) * kg]  # (K/g, C/g, R, S)
                y[:, g * kg : (g + 1) * kg, i, j] = np.tensordot(
                    x_g, w_g, axes=([1, 2, 3], [1, 2, 3])
                )  # (N, K/g)
    return add_bias(y, bias)
