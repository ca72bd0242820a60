"""torch's own im2col path, as a production counterpart of convbench's `im2col`: the same
torch.nn.functional call as the `torch` reference, with oneDNN switched off for the call, so
that aten runs its native unfold + GEMM kernels (thnn_conv2d / slow_conv3d, slow_conv_dilated
for dilation; measured on ResNet-50's 3x3 layers at about 2x oneDNN's time). Comparing convbench's
im2col with it judges the algorithm rather than the implementation.

oneDNN is switched off through torch._C._set_mkldnn_enabled and back after the call (the
public `torch.backends.mkldnn.flags` context also resets the TF32 setting and warns on every
call).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convbench.algorithms.conv.torch_ref import as_tensor, cost_s
from convbench.algorithms.registry import register
from convbench.backends import torch_module
from convbench.problems import LAYOUTS, RANKS, ConvProblem


def _without_onednn(call: Any) -> Any:
    torch = torch_module()
    enabled = torch._C._get_mkldnn_enabled()
    torch._C._set_mkldnn_enabled(False)
    try:
        with torch.inference_mode():
            return call(torch)
    finally:
        torch._C._set_mkldnn_enabled(enabled)


@register(
    "conv2d", "torch_im2col", backends=("numpy", "torch"), requires=("torch",),
    role="reference", cost_s=lambda p: 2.0 * cost_s(p), ranks=RANKS, layouts=LAYOUTS,
    summary="torch.nn.functional.conv{1,2,3}d with oneDNN off: aten's native im2col + GEMM "
    "(the production counterpart of im2col)",
)
def conv2d_torch_im2col(p: ConvProblem, x: Any, w: Any, bias: Any | None) -> Any:
    """numpy in, numpy out (through zero-copy tensors); tensors in, tensors out."""
    host = isinstance(x, np.ndarray)
    tensor = as_tensor if host else (lambda a: a)

    def call(torch: Any) -> Any:
        return getattr(torch.nn.functional, f"conv{p.rank}d")(
            tensor(x), tensor(w), None if bias is None else tensor(bias), p.stride, p.padding,
            p.dilation, p.groups)

    y = _without_onednn(call)
    return y.numpy() if host else y
