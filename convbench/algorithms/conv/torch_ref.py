"""The reference: torch.nn.functional.conv2d, on the CPU (oneDNN) with numpy in and out, or on
torch tensors, CPU or CUDA (cuDNN).

torch is imported on first call, never at registration, so that `convbench list` stays light.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convbench.algorithms import cost
from convbench.backends import torch_module
from convbench.problems import LAYOUTS, RANKS, ConvProblem
from convbench.algorithms.registry import register


def as_tensor(a: np.ndarray) -> Any:  # a torch tensor (torch types stay out of signatures)
    """A zero-copy tensor with the array's strides (channels last stays channels last)."""
    try:
        return torch_module().from_numpy(a)
    except ValueError:  # negative strides: torch has none
        return torch_module().from_numpy(np.ascontiguousarray(a))


def cost_s(p: ConvProblem) -> float:
    """oneDNN: the convolution's MACs as one GEMM-shaped computation per group, at the GEMM rate
    (README: torch runs ResNet-50's 3x3 layers at about numpy's SGEMM peak)."""
    g, kg, pixels = p.groups, p.k // p.groups, p.pixels
    return cost.gemm_s(kg, p.n * pixels, p.reduction_length, p.itemsize, batch=g) + cost.calls_s(4)


@register(
    "conv2d", "torch", backends=("numpy", "torch", "torch-cuda"), requires=("torch",),
    role="reference", cost_s=cost_s, ranks=RANKS, layouts=LAYOUTS,
    summary="torch.nn.functional.conv{1,2,3}d: oneDNN on the CPU, cuDNN on torch-cuda (the "
    "reference); channels-last arrays as channels_last tensors",
)
def conv2d_torch(p: ConvProblem, x: Any, w: Any, bias: Any | None) -> Any:
    """numpy in, numpy out (through zero-copy tensors); tensors in, tensors out."""
    torch = torch_module()
    host = isinstance(x, np.ndarray)
    tensor = as_tensor if host else (lambda a: a)
    with torch.inference_mode():
        y = getattr(torch.nn.functional, f"conv{p.rank}d")(
            tensor(x), tensor(w), None if bias is None else tensor(bias),
            p.stride, p.padding, p.dilation, p.groups,
        )
    return y.numpy() if host else y
