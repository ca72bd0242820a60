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
from convbench.problems import LAYOUTS, PoolProblem

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
          ranks=(2, 3), layouts=LAYOUTS,
          summary="torch.nn.functional.max_pool2d (the reference)")
@on_tensors
def max_pool2d_torch(p: PoolProblem, x: Any) -> Any:
    return getattr(torch_module().nn.functional, f"max_pool{p.rank}d")(
        x, p.kernel, p.stride, p.padding, p.dilation, ceil_mode=p.ceil_mode)


def input_covers_window(p: PoolProblem) -> str | None:
    """torch's avg_pool3d (forward and backward) refuses an input smaller than the window along
    any axis, padding or not ("input image ... smaller than kernel size"); its 2-D one does not.
    Found by `convbench fuzz`."""
    if p.rank == 3 and any(i < k for i, k in zip(p.size, p.kernel, strict=True)):
        return (f"torch's avg_pool3d needs each input axis at least the window before padding, "
                f"got input {p.size} and window {p.kernel}")
    return None


@register("avg_pool2d", "torch", backends=BACKENDS, requires=("torch",), role="reference",
          ranks=(2, 3), layouts=LAYOUTS, checks=(input_covers_window,),
          summary="torch.nn.functional.avg_pool2d (the reference)")
@on_tensors
def avg_pool2d_torch(p: PoolProblem, x: Any) -> Any:
    return getattr(torch_module().nn.functional, f"avg_pool{p.rank}d")(
        x, p.kernel, p.stride, p.padding, ceil_mode=p.ceil_mode,
        count_include_pad=p.count_include_pad, divisor_override=p.divisor_override)


def no_window_in_the_padding(p: PoolProblem) -> str | None:
    """torch's max pooling backward sends the gradient of a window lying wholly in the padding
    to an index past the input (its forward's index of a -inf): a wrong gradient, or a write out
    of bounds. Found by `convbench fuzz`."""
    for axis, size, k, stride, before, _, d, out in p.axes():
        if any(all(not 0 <= o * stride - before + j * d < size for j in range(k))
               for o in range(out)):
            return (f"a window lies wholly in the padding along the {axis}: torch's max pooling "
                    "backward sends its gradient outside the input")
    return None


@register("max_pool2d_backward", "torch", backends=BACKENDS, requires=("torch",), role="reference",
          ranks=(2, 3), layouts=LAYOUTS, checks=(no_window_in_the_padding,),
          summary="aten max_pool2d_with_indices, then its backward (the reference)")
@on_tensors
def max_pool2d_backward_torch(p: PoolProblem, grad_out: Any, x: Any) -> Any:
    aten, window, d = torch_module().ops.aten, list(p.kernel), p.rank
    forward = getattr(aten, f"max_pool{d}d_with_indices")
    _, indices = forward(x, window, p.stride, p.padding, p.dilation, p.ceil_mode)
    return getattr(aten, f"max_pool{d}d_with_indices_backward")(
        grad_out, x, window, p.stride, p.padding, p.dilation, p.ceil_mode, indices)


@register("avg_pool2d_backward", "torch", backends=BACKENDS, requires=("torch",), role="reference",
          ranks=(2, 3), layouts=LAYOUTS, checks=(input_covers_window,),
          summary="aten avg_pool2d_backward (the reference)")
@on_tensors
def avg_pool2d_backward_torch(p: PoolProblem, grad_out: Any, x: Any) -> Any:
    return getattr(torch_module().ops.aten, f"avg_pool{p.rank}d_backward")(
        grad_out, x, list(p.kernel), p.stride, p.padding, p.ceil_mode, p.count_include_pad,
        p.divisor_override)
