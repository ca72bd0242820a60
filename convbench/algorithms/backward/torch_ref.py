"""The references for the backward and transposed convolutions: torch's CPU kernels.

conv2d_backward calls aten's convolution_backward, asking only for the direction's gradient;
conv_transpose2d is torch.nn.functional.conv_transpose2d. torch is imported on first call.
"""

from __future__ import annotations

import numpy as np

from convbench.algorithms.conv.torch_ref import as_tensor
from convbench.backends import torch_module
from convbench.problems import ConvProblem
from convbench.problems.transpose import ConvTransposeProblem
from convbench.algorithms.registry import register


@register(
    "conv2d_backward", "torch", requires=("torch",),
    summary="aten convolution_backward on CPU (the reference)",
)
def conv2d_backward_torch(
    p: ConvProblem, grad_out: np.ndarray, operand: np.ndarray
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    torch, data = torch_module(), p.direction == "bwd_data"
    grad = as_tensor(grad_out)
    # The tensor whose gradient is not asked for enters as a broadcast scalar of its shape.
    x = grad.new_empty(1).expand(p.input_shape) if data else as_tensor(operand)
    w = as_tensor(operand) if data else grad.new_empty(1).expand(p.weight_shape)
    bias = not data and p.bias
    with torch.inference_mode():
        grad_x, grad_w, grad_b = torch.ops.aten.convolution_backward(
            grad, x, w, [p.k] if bias else None, p.stride, p.padding, p.dilation, False,
            [0, 0], p.groups, [data, not data, bias],
        )
    if data:
        return grad_x.numpy()
    return (grad_w.numpy(), grad_b.numpy()) if bias else grad_w.numpy()


@register(
    "conv_transpose2d", "torch", requires=("torch",),
    summary="torch.nn.functional.conv_transpose2d on CPU (the reference)",
)
def conv_transpose2d_torch(
    p: ConvTransposeProblem, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None
) -> np.ndarray:
    torch = torch_module()
    with torch.inference_mode():
        y = torch.nn.functional.conv_transpose2d(
            as_tensor(x), as_tensor(w), None if bias is None else as_tensor(bias), p.stride,
            p.padding, p.output_padding, p.groups, p.dilation,
        )
    return y.numpy()
