"""The library API, with torch.nn.functional's semantics: numpy arrays in, numpy arrays out,
for ranks 1-3.

checks.py holds the one argument checker; conv.py and pool.py the functions of each op family;
padding.py turns TensorFlow's and ONNX's padding into torch's per-side form.
"""

from convbench.api.conv import (
    conv1d,
    conv1d_backward,
    conv2d,
    conv2d_backward,
    conv3d,
    conv3d_backward,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
)
from convbench.api.padding import onnx_padding, tf_padding
from convbench.api.pool import (
    avg_pool1d,
    avg_pool1d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    avg_pool3d,
    avg_pool3d_backward,
    global_avg_pool1d,
    global_avg_pool2d,
    global_avg_pool3d,
    max_pool1d,
    max_pool1d_backward,
    max_pool2d,
    max_pool2d_backward,
    max_pool3d,
    max_pool3d_backward,
)

__all__ = [
    "avg_pool1d",
    "avg_pool1d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "avg_pool3d",
    "avg_pool3d_backward",
    "conv1d",
    "conv1d_backward",
    "conv2d",
    "conv2d_backward",
    "conv3d",
    "conv3d_backward",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "global_avg_pool1d",
    "global_avg_pool2d",
    "global_avg_pool3d",
    "max_pool1d",
    "max_pool1d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool3d",
    "max_pool3d_backward",
    "onnx_padding",
    "tf_padding",
]
