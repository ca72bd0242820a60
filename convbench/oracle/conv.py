"""Float64 oracles of the convolutions: conv2d, conv2d_backward (bwd_data, bwd_weight) and
conv_transpose2d.

The backward passes are torch autograd in float64 through torch.nn.functional.conv2d: an
implementation independent of the aten backward kernels that the `torch` algorithm times. The
transposed convolution is torch.nn.functional.conv_transpose2d in float64. The magnitudes M_i of
the tolerance model are the same computations on absolute values: |grad_out| with |w| (bwd_data),
|x| with |grad_out| (bwd_weight, and sum |grad_out| for the bias), |x| with |w| (transposed).
"""

from __future__ import annotations

import math
from collections.abc import Callable
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
from convbench.problems import ConvProblem
from convbench.problems.transpose import ConvTransposeProblem



# --- convolution (forward) -----------------------------------------------------------------------------
def explicit_pad(p: Any, x: Any, value: float = 0.0) -> Any:
    """A float64 tensor padded before and after each spatial axis as `p` says (torch's pad lists
    the last axis first)."""
    sides = [width for b, e in zip(reversed(p.padding), reversed(p.padding_after), strict=True)
             for width in (b, e)]
    if not any(sides):
        return x
    return torch_module().nn.functional.pad(x, sides, value=value)


def conv64(p: ConvProblem, x: Any, w: Any, bias: Any = None) -> Any:
    """torch's conv{rank}d on float64 tensors, every side's padding made explicit."""
    conv = getattr(torch_module().nn.functional, f"conv{p.rank}d")
    return conv(explicit_pad(p, x), w, bias, p.stride, 0, p.dilation, p.groups)


def _conv64(p: ConvProblem, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    torch, t = torch_module(), as_float64_tensor
    with torch.inference_mode():
        y = conv64(p, t(x), t(w), t(bias))
    return y.numpy()


def weighted_inputs(p: Any, rng: np.random.Generator, exact: bool) -> Inputs:
    """(x, w, bias) of a forward convolution, plain or transposed: the shapes the problem says."""
    x = draw(rng, p.input_shape, p.dtype, exact, 0.5)
    w = draw(rng, p.weight_shape, p.dtype, exact, 0.25)
    bias = draw(rng, (p.k,), p.dtype, exact, 0.125) if p.bias else None
    return Inputs(("x", "w", "bias"), (x, w, bias))


def linear_reference(compute: Callable[..., np.ndarray]) -> Callable[[Any, Inputs], Reference]:
    """The oracle of an op linear in each input: `compute` on the inputs, and on their absolute
    values for the magnitudes M_i."""
    def reference(p: Any, inputs: Inputs) -> Reference:
        x, w, bias = inputs.arrays
        y = compute(p, x, w, bias)
        magnitude = compute(p, np.abs(x), np.abs(w), None if bias is None else np.abs(bias))
        return Reference((y,), (magnitude,))

    return reference


register_oracle("conv2d", OpOracle(
    weighted_inputs, linear_reference(_conv64), lambda p: (p.reduction_length + int(p.bias),),
))


def conv2d_gradient(p: ConvProblem, grad_out: np.ndarray, operand: np.ndarray) -> np.ndarray:
    """Float64 autograd of conv2d: grad_x from (grad_out, w) when p.direction is bwd_data, else
    grad_w from (grad_out, x). The gradient does not depend on the tensor it is taken for, so
    that one enters as zeros."""
    torch, t = torch_module(), as_float64_tensor
    data = p.direction == "bwd_data"
    x = torch.zeros(p.input_shape, dtype=torch.float64) if data else t(operand)
    w = t(operand) if data else torch.zeros(p.weight_shape, dtype=torch.float64)
    wrt = x if data else w
    with torch.enable_grad():
        wrt.requires_grad_(True)
        (grad,) = torch.autograd.grad(conv64(p, x, w), wrt, t(grad_out))
    return grad.numpy()


def _backward_inputs(p: ConvProblem, rng: np.random.Generator, exact: bool) -> Inputs:
    grad_out = draw(rng, p.output_shape, p.dtype, exact, 0.5)
    if p.direction == "bwd_data":
        return Inputs(("grad_out", "w"), (grad_out, draw(rng, p.weight_shape, p.dtype, exact,
                                                          0.25)))
    return Inputs(("grad_out", "x"), (grad_out, draw(rng, p.input_shape, p.dtype, exact, 0.5)))


def _backward_reference(p: ConvProblem, inputs: Inputs) -> Reference:
    grad_out, operand = (np.asarray(a, dtype=np.float64) for a in inputs.arrays)
    outputs = [conv2d_gradient(p, grad_out, operand)]
    magnitudes = [conv2d_gradient(p, np.abs(grad_out), np.abs(operand))]
    if p.direction == "bwd_weight" and p.bias:
        axes = (0, *range(2, grad_out.ndim))
        outputs.append(grad_out.sum(axis=axes))
        magnitudes.append(np.abs(grad_out).sum(axis=axes))
    return Reference(tuple(outputs), tuple(magnitudes))


def _backward_lengths(p: ConvProblem) -> tuple[int, ...]:
    """bwd_data: at most K/g*R*S terms reach one input pixel; bwd_weight: N*OH*OW per weight
    (and per bias)."""
    if p.direction == "bwd_data":
        return (p.k // p.groups * math.prod(p.kernel),)
    pixels = p.n * p.pixels
    return (pixels, pixels) if p.bias else (pixels,)


def _transpose64(p: ConvTransposeProblem, x: np.ndarray, w: np.ndarray,
                 bias: np.ndarray | None) -> np.ndarray:
    """torch's conv_transpose{rank}d in float64, with the smaller side's padding; the rest of
    the padding crops the output (a transposed convolution's padding removes output)."""
    torch, t = torch_module(), as_float64_tensor
    common = tuple(min(b, e) for b, e in zip(p.padding, p.padding_after, strict=True))
    transpose = getattr(torch.nn.functional, f"conv_transpose{p.rank}d")
    with torch.inference_mode():
        y = transpose(t(x), t(w), t(bias), p.stride, common, p.output_padding, p.groups,
                      p.dilation).numpy()
    crop = tuple(slice(b - m, y.shape[2 + i] - (e - m)) for i, (b, e, m) in enumerate(
        zip(p.padding, p.padding_after, common, strict=True)))
    return y[(slice(None), slice(None), *crop)]


register_oracle("conv2d_backward", OpOracle(
    _backward_inputs, _backward_reference, _backward_lengths,
))
register_oracle("conv_transpose2d", OpOracle(
    weighted_inputs, linear_reference(_transpose64),
    lambda p: (p.reduction_length + int(p.bias),),
))
