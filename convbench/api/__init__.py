"""The library API, with torch.nn.functional's semantics: numpy arrays in, numpy arrays out.

checks.py holds the one argument checker; conv.py and pool.py the functions of each op family.
"""

from convbench.api.conv import conv2d, conv2d_backward, conv_transpose2d
from convbench.api.pool import (
    avg_pool2d,
    avg_pool2d_backward,
    global_avg_pool2d,
    max_pool2d,
    max_pool2d_backward,
)

__all__ = [
    "avg_pool2d", "avg_pool2d_backward", "conv2d", "conv2d_backward", "conv_transpose2d",
    "global_avg_pool2d", "max_pool2d", "max_pool2d_backward",
]
