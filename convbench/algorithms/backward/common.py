"""What every conv2d_backward algorithm shares: one entry point for both directions, and the
transposed convolution as the bwd_data pass of its adjoint.

A backward problem carries its direction. Its inputs are (grad_out, w) in bwd_data and
(grad_out, x) in bwd_weight, as benchdnn's BWD_D and BWD_W take them; bwd_weight also returns
the bias gradient (the sum of grad_out over N, OH, OW) when the problem has a bias.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from convbench.algorithms.windows import add_bias
from convbench.problems import ConvProblem
from convbench.problems.transpose import ConvTransposeProblem

Pass = Callable[[ConvProblem, np.ndarray, np.ndarray], np.ndarray]


def bias_gradient(grad_out: np.ndarray) -> np.ndarray:
    """(K,): the sum of grad_out (N, K, OH, OW) over everything but K."""
    return grad_out.sum(axis=(0, 2, 3))


def by_direction(p: ConvProblem, grad_out: np.ndarray, operand: np.ndarray, data: Pass,
                 weight: Pass) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """grad_x = data(p, grad_out, w) in bwd_data; grad_w = weight(p, grad_out, x) in bwd_weight,
    with (grad_w, grad_bias) when p has a bias."""
    if p.direction == "bwd_data":
        return data(p, grad_out, operand)
    grad_w = weight(p, grad_out, operand)
    return (grad_w, bias_gradient(grad_out)) if p.bias else grad_w


def padded_zeros(p: ConvProblem, dtype: np.dtype) -> np.ndarray:
    """(N, C, H + 2P, W + 2P) zeros: the padded input's gradient, before cropping."""
    ph, pw = p.padding
    return np.zeros((p.n, p.c, p.h + 2 * ph, p.w + 2 * pw), dtype=dtype)


def transposed(p: ConvTransposeProblem, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None,
               data: Pass) -> np.ndarray:
    """conv_transpose2d as data(p.adjoint, x, w) + bias. x is the adjoint's output gradient,
    zero-padded at the bottom and right where the adjoint has more outputs (output_padding at
    least the stride)."""
    q = p.adjoint
    extra_h, extra_w = q.out_h - p.h, q.out_w - p.w
    if extra_h or extra_w:
        x = np.pad(x, ((0, 0), (0, 0), (0, extra_h), (0, extra_w)))
    return add_bias(data(q, x, w), bias)


def register_pair(name: str, data: Pass, weight: Pass, workspace_bytes: Callable[..., int],
                  summaries: tuple[str, str], estimate_s: Callable[..., float] | None = None
                  ) -> None:
    """Register `name` for conv2d_backward (bwd_data by `data`, bwd_weight by `weight`) and for
    conv_transpose2d (the adjoint's bwd_data by `data`), with the same declarations."""
    from convbench.algorithms.registry import register

    def adjoint(model: Callable[..., Any] | None) -> Callable[..., Any] | None:
        return None if model is None else (lambda p: model(p.adjoint))

    register("conv2d_backward", name, exact=True, workspace_bytes=workspace_bytes,
             estimate_s=estimate_s, summary=summaries[0])(
        lambda p, grad_out, operand: by_direction(p, grad_out, operand, data, weight))
    register("conv_transpose2d", name, exact=True, workspace_bytes=adjoint(workspace_bytes),
             estimate_s=adjoint(estimate_s), summary=summaries[1])(
        lambda p, x, w, bias: transposed(p, x, w, bias, data))
