"""Float64 oracles for max and average pooling of every rank and their backward passes.

The forward passes are torch.nn.functional's pooling in float64 on an explicitly padded input
(-inf for max; for average, the window sum divided by a count pooled from a mask of what the
divisor counts: the padded input, the input alone without count_include_pad, or
divisor_override), so that padding may differ before and after an axis; rank 1 is pooled as a
2-D image of height 1. The backward passes are torch autograd through them, so ties in max
pooling go where torch sends them (the first maximum in the window's scan order). Magnitudes M_i: for max pooling the selected |x| (forward) or |grad_out|
routed through the same argmax (backward); for average pooling the average of |x| (forward) or
|grad_out| spread the same way (backward). Imported by convbench.oracle.oracle_for on first use.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from convbench.backends import torch_module
from convbench.oracle.conv import explicit_pad
from convbench.oracle.core import (
    Inputs,
    OpOracle,
    Reference,
    as_float64_tensor,
    draw,
    register_oracle,
)
from convbench.problems import PoolProblem


def pool64(p: PoolProblem, x: Any) -> Any:  # torch tensors in and out
    """The forward pooling of `p` on a float64 tensor, as torch computes it."""
    torch = torch_module()
    lifted = p.rank == 1
    rank = 2 if lifted else p.rank
    lead = ((1,) if lifted else ())
    if lifted:
        x = x[:, :, None, :]
    kernel, stride, dilation = (lead + tuple(getattr(p, f)) for f in ("kernel", "stride",
                                                                       "dilation"))
    functional = torch.nn.functional
    if p.kind == "max":
        pool = getattr(functional, f"max_pool{rank}d")
        y = pool(explicit_pad(p, x, -math.inf), kernel, stride, 0, dilation, ceil_mode=p.ceil_mode)
    else:
        window_sum = getattr(functional, f"avg_pool{rank}d")
        y = window_sum(explicit_pad(p, x), kernel, stride, 0, ceil_mode=p.ceil_mode,
                       divisor_override=1)
        if p.divisor_override is not None:
            y = y / p.divisor_override
        else:
            mask = torch.ones((1, 1, *x.shape[2:]), dtype=x.dtype)
            counted = explicit_pad(p, mask, 1.0 if p.count_include_pad else 0.0)
            y = y / window_sum(counted, kernel, stride, 0, ceil_mode=p.ceil_mode,
                               divisor_override=1)
    y = y[(..., *(slice(0, o) for o in p.out_size))] if not lifted else \
        y[:, :, 0, : p.out_size[0]]
    return y


def pool_gradient(p: PoolProblem, grad_out: np.ndarray, x: np.ndarray) -> np.ndarray:
    """grad_x of the forward pooling at x, by float64 autograd."""
    torch = torch_module()
    x64 = as_float64_tensor(x).clone()
    with torch.enable_grad():
        x64.requires_grad_(True)
        (grad,) = torch.autograd.grad(pool64(p, x64), x64, as_float64_tensor(grad_out))
    return grad.numpy()


def _inputs(p: PoolProblem, rng: np.random.Generator, exact: bool) -> Inputs:
    if p.direction == "bwd_data":
        grad_out = draw(rng, p.output_shape, p.dtype, exact, 0.5)
        return Inputs(("grad_out", "x"), (grad_out, draw(rng, p.input_shape, p.dtype, exact, 0.5)))
    return Inputs(("x",), (draw(rng, p.input_shape, p.dtype, exact, 0.5),))


def _reference(p: PoolProblem, inputs: Inputs) -> Reference:
    if p.direction == "bwd_data":
        grad_out, x = inputs.arrays
        return Reference((pool_gradient(p, grad_out, x),),
                         (pool_gradient(p, np.abs(grad_out), x),))
    torch, (x,) = torch_module(), inputs.arrays
    with torch.inference_mode():
        y = pool64(p, as_float64_tensor(x)).numpy()
        magnitude = np.abs(y) if p.kind == "max" else \
            pool64(p, as_float64_tensor(np.abs(x))).numpy()
    return Reference((y,), (magnitude,))


def _lengths(p: PoolProblem) -> tuple[int]:
    """A maximum is exact (1); an average sums R*S terms and divides; a backward pass sums the
    gradients of at most R*S windows (and an average divides each)."""
    if p.kind == "max":
        return (1,) if p.direction == "fwd" else (p.window,)
    return (p.window + 1,)


for _op in ("max_pool2d", "avg_pool2d", "max_pool2d_backward", "avg_pool2d_backward"):
    register_oracle(_op, OpOracle(_inputs, _reference, _lengths))
