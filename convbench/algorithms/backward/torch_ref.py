"""The references for the backward and transposed convolutions: torch's kernels, on the CPU
with numpy in and out, or on torch tensors, CPU or CUDA, as the conv2d reference does.

conv2d_backward calls aten's convolution_backward, asking only for the direction's gradient;
conv_transpose2d is torch.nn.functional.conv_transpose2d. torch is imported on first call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from convbench.algorithms.conv.torch_ref import as_tensor
from convbench.backends import torch_module
from convbench.problems import LAYOUTS, RANKS, ConvProblem
from convbench.problems.transpose import ConvTransposeProblem
from convbench.algorithms.registry import register

TORCH_BACKENDS = ("numpy", "torch", "torch-cuda")


def _converters(a: Any) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """(into a tensor, back out): through zero-copy tensors for numpy; identities for tensors."""
    if isinstance(a, np.ndarray):
        return as_tensor, lambda t: t.numpy()
    return (lambda t: t), (lambda t: t)


@register(
    "conv2d_backward", "torch", backends=TORCH_BACKENDS, requires=("torch",), role="reference",
    ranks=RANKS, layouts=LAYOUTS,
    summary="aten convolution_backward: oneDNN on the CPU, cuDNN on torch-cuda (the reference)",
)
def conv2d_backward_torch(p: ConvProblem, grad_out: Any, operand: Any) -> Any:
    """numpy in, numpy out; tensors in, tensors out. bwd_weight with a bias: (grad_w, grad_b)."""
    torch, data = torch_module(), p.direction == "bwd_data"
    tensor, out = _converters(grad_out)
    grad = tensor(grad_out)
    # The tensor whose gradient is not asked for enters as a broadcast scalar of its shape.
    x = grad.new_empty(1).expand(p.input_shape) if data else tensor(operand)
    w = tensor(operand) if data else grad.new_empty(1).expand(p.weight_shape)
    bias = not data and p.bias
    with torch.inference_mode():
        grad_x, grad_w, grad_b = torch.ops.aten.convolution_backward(
            grad, x, w, [p.k] if bias else None, p.stride, p.padding, p.dilation, False,
            [0] * p.rank, p.groups, [data, not data, bias],
        )
    if data:
        return out(grad_x)
    return (out(grad_w), out(grad_b)) if bias else out(grad_w)


@register(
    "conv_transpose2d", "torch", backends=TORCH_BACKENDS, requires=("torch",), role="reference",
    ranks=RANKS, layouts=LAYOUTS,
    summary="torch.nn.functional.conv_transpose{1,2,3}d: oneDNN on the CPU, cuDNN on "
    "torch-cuda (the reference)",
)
def conv_transpose2d_torch(p: ConvTransposeProblem, x: Any, w: Any, bias: Any | None) -> Any:
    """numpy in, numpy out; tensors in, tensors out."""
    torch = torch_module()
    tensor, out = _converters(x)
    with torch.inference_mode():
        y = getattr(torch.nn.functional, f"conv_transpose{p.rank}d")(
            tensor(x), tensor(w), None if bias is None else tensor(bias), p.stride,
            p.padding, p.output_padding, p.groups, p.dilation,
        )
    return out(y)
