"""Float64 oracles for max_pool2d, avg_pool2d and their backward passes.

The forward passes are torch.nn.functional's pooling in float64; the backward passes are torch
autograd through them, so ties in max pooling go where torch sends them (the first maximum in the
window's scan order). Magnitudes M_i: for max pooling the selected |x| (forward) or |grad_out|
routed through the same argmax (backward); for average pooling the average of |x| (forward) or
|grad_out| spread the same way (backward). Imported by convbench.oracle.oracle_for on first use.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convbench.backends import torch_module
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
    functional = torch_module().nn.functional
    window, stride = (p.r, p.s), p.stride
    if p.kind == "max":
        return functional.max_pool2d(x, window, stride, p.padding, p.dilation,
                                     ceil_mode=p.ceil_mode)
    return functional.avg_pool2d(x, window, stride, p.padding, ceil_mode=p.ceil_mode,
                                 count_include_pad=p.count_include_pad)


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
        return (1,) if p.direction == "fwd" else (p.r * p.s,)
    return (p.r * p.s + 1,)


for _op in ("max_pool2d", "avg_pool2d", "max_pool2d_backward", "avg_pool2d_backward"):
    register_oracle(_op, OpOracle(_inputs, _reference, _lengths))
