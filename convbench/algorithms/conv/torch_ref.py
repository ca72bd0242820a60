"""The reference: torch.nn.functional.conv2d, on the CPU (oneDNN) with numpy in and out, or on
torch tensors, CPU or CUDA (cuDNN).

torch is imported on first call, never at registration, so that `convbench list` stays light.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convbench.algorithms import cost
from convbench.backends import torch_module
from convbench.problems import ConvProblem
from convbench.algorithms.registry import register


def as_tensor(a: np.ndarray) -> Any:  # a torch tensor (torch types stay out of signatures)
    return torch_module().from_numpy(np.ascontiguousarray(a))


def cost_s(p: ConvProblem) -> float:
    """oneDNN: the convolution's MACs as one GEMM-shaped computation per group, at the GEMM rate
    (README: torch runs ResNet-50's 3x3 layers at about numpy's SGEMM peak)."""
    g, kg, pixels = p.groups, p.k // p.groups, p.out_h * p.out_w
    return cost.gemm_s(kg, p.n * pixels, p.reduction_length, p.itemsize, batch=g) + cost.calls_s(4)


@register(
    "conv2d", "torch", backends=("numpy", "torch", "torch-cuda"), requires=("torch",),
    role="reference", cost_s=cost_s,
    summary="torch.nn.functional.conv2d: oneDNN on the CPU, cuDNN on torch-cuda (the reference)",
)
def conv2d_torch(p: ConvProblem, x: Any, w: Any, bias: Any | None) -> Any:
    """numpy in, numpy out (through zero-copy tensors); tensors in, tensors out."""
    torch = torch_module()
    host = isinstance(x, np.ndarray)
    tensor = as_tensor if host else (lambda a: a)
    with torch.inference_mode():
        y = torch.nn.functional.conv2d(
            tensor(x), tensor(w), None if bias is None else tensor(bias),
            p.stride, p.padding, p.dilation, p.groups,
        )
    return y.numpy() if host else y
