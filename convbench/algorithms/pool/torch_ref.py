"""The pooling references: torch's CPU kernels, numpy in and out; torch imported on first call.

The backward passes call aten's backward kernels directly (max pooling through the forward's
indices), not autograd, so they time the backward pass itself.
"""

from __future__ import annotations

import numpy as np

from convbench.algorithms.conv.torch_ref import as_tensor
from convbench.backends import torch_module
from convbench.problems import PoolProblem
from convbench.algorithms.registry import register


@register("max_pool2d", "torch", requires=("torch",),
          summary="torch.nn.functional.max_pool2d on CPU (the reference)")
def max_pool2d_torch(p: PoolProblem, x: np.ndarray) -> np.ndarray:
    torch = torch_module()
    with torch.inference_mode():
        return torch.nn.functional.max_pool2d(as_tensor(x), (p.r, p.s), p.stride, p.padding,
                                              p.dilation, ceil_mode=p.ceil_mode).numpy()


@register("avg_pool2d", "torch", requires=("torch",),
          summary="torch.nn.functional.avg_pool2d on CPU (the reference)")
def avg_pool2d_torch(p: PoolProblem, x: np.ndarray) -> np.ndarray:
    torch = torch_module()
    with torch.inference_mode():
        return torch.nn.functional.avg_pool2d(
            as_tensor(x), (p.r, p.s), p.stride, p.padding, ceil_mode=p.ceil_mode,
            count_include_pad=p.count_include_pad).numpy()


@register("max_pool2d_backward", "torch", requires=("torch",),
          summary="aten max_pool2d_with_indices, then its backward (the reference)")
def max_pool2d_backward_torch(p: PoolProblem, grad_out: np.ndarray,
                              x: np.ndarray) -> np.ndarray:
    torch, aten, x_t = torch_module(), torch_module().ops.aten, as_tensor(x)
    window = [p.r, p.s]
    with torch.inference_mode():
        _, indices = aten.max_pool2d_with_indices(x_t, window, p.stride, p.padding, p.dilation,
                                                  p.ceil_mode)
        return aten.max_pool2d_with_indices_backward(
            as_tensor(grad_out), x_t, window, p.stride, p.padding, p.dilation, p.ceil_mode,
            indices).numpy()


@register("avg_pool2d_backward", "torch", requires=("torch",),
          summary="aten avg_pool2d_backward on CPU (the reference)")
def avg_pool2d_backward_torch(p: PoolProblem, grad_out: np.ndarray,
                              x: np.ndarray) -> np.ndarray:
    torch = torch_module()
    with torch.inference_mode():
        return torch.ops.aten.avg_pool2d_backward(
            as_tensor(grad_out), as_tensor(x), [p.r, p.s], p.stride, p.padding, p.ceil_mode,
            p.count_include_pad, None).numpy()
