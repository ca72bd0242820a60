"""The library API of pooling, forward and backward, with torch.nn.functional's semantics.

NCHW (or unbatched CHW) numpy arrays in and out, dtype kept. kernel_size, stride, padding and
dilation take an int or a pair; stride defaults to the window. Every argument is checked before
any work starts, with torch's rules: padding at most half the window, the window no larger than
the padded input, average pooling without dilation.
"""

from __future__ import annotations

import numpy as np

from convbench.api.checks import (
    IntPair,
    batched,
    check_array,
    check_same_dtype,
    flag,
    pick,
    unbatched,
)
from convbench.problems import PoolProblem, as_pair


def pool_problem(
    kind: str, x: np.ndarray, kernel_size: IntPair, stride: IntPair | None, padding: IntPair,
    dilation: IntPair, ceil_mode: bool, count_include_pad: bool, direction: str = "fwd",
) -> PoolProblem:
    """The PoolProblem these arguments describe, x batched or not."""
    r, s = as_pair("kernel_size", kernel_size, 1)
    n, (c, h, w) = (1 if x.ndim == 3 else x.shape[0]), x.shape[-3:]
    return PoolProblem(
        kind, n, c, h, w, r, s, stride=stride, padding=padding,  # type: ignore[arg-type]
        dilation=dilation, ceil_mode=flag("ceil_mode", ceil_mode),  # type: ignore[arg-type]
        count_include_pad=flag("count_include_pad", count_include_pad), dtype=x.dtype.name,
        direction=direction,
    )


def _forward(problem: PoolProblem, x: np.ndarray, algo: str) -> np.ndarray:
    algorithm = pick(problem, algo)
    return unbatched(algorithm.fn(problem, batched(x)), x)


def _backward(problem: PoolProblem, grad_out: np.ndarray, x: np.ndarray, algo: str) -> np.ndarray:
    check_array("grad_out", grad_out, (3, 4))
    check_same_dtype(grad_out=grad_out, x=x)
    expected = problem.output_shape if x.ndim == 4 else problem.output_shape[1:]
    if grad_out.shape != expected:
        raise ValueError(f"grad_out must have the forward output's shape {expected}, "
                         f"got {grad_out.shape}")
    algorithm = pick(problem, algo)
    return unbatched(algorithm.fn(problem, batched(grad_out), batched(x)), x)


def max_pool2d(
    x: np.ndarray, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
    dilation: IntPair = 1, ceil_mode: bool = False, *, algo: str = "auto",
) -> np.ndarray:
    """Max pooling: x (N, C, H, W) or (C, H, W) -> (N, C, OH, OW)."""
    check_array("x", x, (3, 4))
    problem = pool_problem("max", x, kernel_size, stride, padding, dilation, ceil_mode, True)
    return _forward(problem, x, algo)


def avg_pool2d(
    x: np.ndarray, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
    ceil_mode: bool = False, count_include_pad: bool = True, *, algo: str = "auto",
) -> np.ndarray:
    """Average pooling: x (N, C, H, W) or (C, H, W) -> (N, C, OH, OW); the divisor is torch's."""
    check_array("x", x, (3, 4))
    problem = pool_problem("avg", x, kernel_size, stride, padding, 1, ceil_mode,
                           count_include_pad)
    return _forward(problem, x, algo)


def global_avg_pool2d(x: np.ndarray, *, algo: str = "auto") -> np.ndarray:
    """The mean over H and W: x (N, C, H, W) or (C, H, W) -> (N, C, 1, 1) (or (C, 1, 1))."""
    check_array("x", x, (3, 4))
    return avg_pool2d(x, tuple(x.shape[-2:]), algo=algo)  # type: ignore[arg-type]


def max_pool2d_backward(
    grad_out: np.ndarray, x: np.ndarray, kernel_size: IntPair, stride: IntPair | None = None,
    padding: IntPair = 0, dilation: IntPair = 1, ceil_mode: bool = False, *, algo: str = "auto",
) -> np.ndarray:
    """grad_x of max_pool2d(x, ...): each output's gradient goes to its window's maximum (the
    first in scan order on ties, as torch)."""
    check_array("x", x, (3, 4))
    problem = pool_problem("max", x, kernel_size, stride, padding, dilation, ceil_mode, True,
                           "bwd_data")
    return _backward(problem, grad_out, x, algo)


def avg_pool2d_backward(
    grad_out: np.ndarray, x: np.ndarray, kernel_size: IntPair, stride: IntPair | None = None,
    padding: IntPair = 0, ceil_mode: bool = False, count_include_pad: bool = True, *,
    algo: str = "auto",
) -> np.ndarray:
    """grad_x of avg_pool2d(x, ...): each output's gradient spread evenly over its window."""
    check_array("x", x, (3, 4))
    problem = pool_problem("avg", x, kernel_size, stride, padding, 1, ceil_mode,
                           count_include_pad, "bwd_data")
    return _backward(problem, grad_out, x, algo)
