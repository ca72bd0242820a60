"""convbench: compare convolution and pooling algorithms against a float64 oracle.

Library use (torch.nn.functional semantics, NCHW numpy arrays)::

    import convbench
    convbench.algorithms("conv2d")                 # ['direct_naive', 'direct', 'im2col', 'torch']
    y = convbench.conv2d(x, w, stride=2, padding=1, algo="im2col")
    grad_x, grad_w, grad_bias = convbench.conv2d_backward(grad_y, x, w, stride=2, padding=1)
    z = convbench.max_pool2d(y, 3, stride=2, padding=1)

The ops: conv2d, conv_transpose2d, conv2d_backward, max_pool2d, avg_pool2d (and
global_avg_pool2d), max_pool2d_backward, avg_pool2d_backward.

Importing convbench never imports torch or cupy.
"""

import importlib.metadata as _metadata
import os as _os

# Idle worker threads, before numpy and torch load their thread pools. After each call OpenBLAS's
# threads spin for 2^28 cycles (about 0.1 s) and torch's OpenMP (GNU libgomp) threads spin too;
# on a machine with no core to spare they take the cores from the next library's threads. With
# 2 threads on 2 cores, torch's conv2d timed right after numpy (`convbench run --interleave`)
# ran 2-3x slower, and numpy's GEMMs ran up to 2x slower after torch. Spinning 2^20 cycles
# (OpenBLAS, ~0.3 ms) and 10,000 rounds (libgomp) keeps the threads awake between back-to-back
# calls of one library and frees the cores before the next (README, "How time and memory are
# measured"). A value already set wins; each run records them in meta.json.
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")
_os.environ.setdefault("GOMP_SPINCOUNT", "10000")

# The built-in implementations install as the package convbench.algorithms. Import it first
# (registering them), then bind the name `algorithms` to the registry query, as the API promises;
# `from convbench.algorithms import im2col` still reaches the package.
import convbench.algorithms as _builtin_algorithms  # noqa: F401  (registers the built-ins)
from convbench.api import (
    conv2d,
    conv2d_backward,
    conv_transpose2d,
    avg_pool2d,
    avg_pool2d_backward,
    global_avg_pool2d,
    max_pool2d,
    max_pool2d_backward,
)
from convbench.problems import (
    ConvProblem,
    ConvTransposeProblem,
    PoolProblem,
    format_descriptor,
    parse,
)
from convbench.algorithms.registry import Unsupported, algorithms, register

__version__ = _metadata.version("convbench")

__all__ = [
    "ConvProblem",
    "ConvTransposeProblem",
    "PoolProblem",
    "Unsupported",
    "algorithms",
    "avg_pool2d",
    "avg_pool2d_backward",
    "conv2d",
    "conv2d_backward",
    "conv_transpose2d",
    "format_descriptor",
    "global_avg_pool2d",
    "max_pool2d",
    "max_pool2d_backward",
    "parse",
    "register",
]
