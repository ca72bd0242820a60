"""The pooling references: torch's kernels, numpy in and out (through zero-copy tensors, on the
CPU), or torch tensors in and out (CPU or CUDA). torch is imported on first call.

The backward passes call aten's backward kernels directly (max pooling through the forward's
indices), not autograd, so they time the backward pass itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from convbench.algorithms.conv.torch_ref import as_tensor
from convbench.algorithms.registry import register
from convbench.backends import torch_module
from convbench.problems import PoolProblem

BACKENDS = ("numpy", "torch", "torch-cuda")


def on_tensors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """fn(p, *tensors) -> tensor, called under inference mode: numpy arrays in, numpy out
    (zero-copy tensors both ways); tensors in, tensors out."""
    @functools.wraps(fn)
    def call(p: PoolProblem, *arrays: Any) -> Any:
        host = isinstance(arrays[0], np.ndarray)
        with torch_module().inference_mode():
            y = fn(p, *(as_tensor(a) if host else a for a in arrays))
        return y.numpy() if host else y

    return call


@register("max_pool2d", "torch", backends=BACKENDS, requires=("torch",), role="reference",
          summary="torch.nn.functional.max_pool2d (the reference)")
@on_tensors
def max_pool2d_torch(p: PoolProblem, x: Any) -> Any:
    return torch_module().nn.functional.max_pool2d(x, (p.r, p.s), p.stride, p.padding,
                                                   p.dilation, ceil_mode=p.ceil_mode)


@register("avg_pool2d", "torch", backends=BACKENDS, requires=("torch",), role="reference",
          summary="torch.nn.functional.avg_pool2d (the reference)")
@on_tensors
def avg_pool2d_torch(p: PoolProblem, x: Any) -> Any:
    return torch_module().nn.functional.avg_pool2d(
        x, (p.r, p.s), p.stride, p.padding, ceil_mode=p.ceil_mode,
        count_include_pad=p.count_include_pad)


@register("max_pool2d_backward", "torch", backends=BACKENDS, requires=("torch",), role="reference",
          summary="aten max_pool2d_with_indices, then its backward (the reference)")
@on_tensors
def max_pool2d_backward_torch(p: PoolProblem, grad_out: Any, x: Any) -> Any:
    aten, window = torch_module().ops.aten, [p.r, p.s]
    _, indices = aten.max_pool2d_with_indices(x, window, p.stride, p.padding, p.dilation,
                                              p.ceil_mode)
    return aten.max_pool2d_with_indices_backward(grad_out, x, window, p.stride, p.padding,
                                                 p.dilation, p.ceil_mode, indices)


@register("avg_pool2d_backward", "torch", backends=BACKENDS, requires=("torch",), role="reference",
          summary="aten avg_pool2d_backward (the reference)")
@on_tensors
def avg_pool2d_backward_torch(p: PoolProblem, grad_out: Any, x: Any) -> Any:
    return torch_module().ops.aten.avg_pool2d_backward(
        grad_out, x, [p.r, p.s], p.stride, p.padding, p.ceil_mode, p.count_include_pad, None)
