"""convbench: compare convolution and pooling algorithms against a float64 oracle.

Library use (torch.nn.functional semantics and argument names, numpy arrays, ranks 1-3)::

    import convbench
    convbench.algorithms("conv2d")                 # ['direct_naive', 'direct', 'im2col', 'torch']
    y = convbench.conv2d(x, w, stride=2, padding=1, algo="im2col")
    grad_x, grad_w, grad_bias = convbench.conv2d_backward(grad_y, x, w, stride=2, padding=1)
    z = convbench.max_pool2d(y, 3, stride=2, padding=1)

The ops, each for ranks 1, 2 and 3 (conv1d, conv2d, conv3d, ...): conv, conv_transpose,
conv backward, max_pool (return_indices too), avg_pool (divisor_override too, and
global_avg_pool), max_pool_backward (from indices too), avg_pool_backward. tf_padding and
onnx_padding turn TensorFlow's SAME/VALID and ONNX's pads/auto_pad into per-side padding.

Models (convbench.models, imported on first use): suite_from_module(module, (1, 3, 224, 224))
and suite_from_onnx("model.onnx") turn a network's conv and pooling layers into a suite;
trace_module and read_onnx give the layers themselves, with what was left out and why.

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
    avg_pool1d,
    avg_pool1d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    avg_pool3d,
    avg_pool3d_backward,
    conv1d,
    conv1d_backward,
    conv2d,
    conv2d_backward,
    conv3d,
    conv3d_backward,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
    global_avg_pool1d,
    global_avg_pool2d,
    global_avg_pool3d,
    max_pool1d,
    max_pool1d_backward,
    max_pool2d,
    max_pool2d_backward,
    max_pool3d,
    max_pool3d_backward,
    onnx_padding,
    tf_padding,
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

# Imported on first use (module __getattr__): reading a model brings torch or onnx with it.
_MODELS = ("read_onnx", "suite_from_module", "suite_from_onnx", "trace_module")


def __getattr__(name: str) -> object:
    """convbench.suite_from_module and the other model readers, from convbench.models."""
    if name in _MODELS:
        import convbench.models

        return getattr(convbench.models, name)
    raise AttributeError(f"module 'convbench' has no attribute {name!r}")


__all__ = [
    "ConvProblem",
    "ConvTransposeProblem",
    "PoolProblem",
    "Unsupported",
    "algorithms",
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
    "format_descriptor",
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
    "parse",
    "read_onnx",
    "register",
    "suite_from_module",
    "suite_from_onnx",
    "tf_padding",
    "trace_module",
]
