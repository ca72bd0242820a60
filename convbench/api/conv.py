"""The library API of convolution: conv2d, conv_transpose2d and conv2d_backward.

torch.nn.functional's semantics (and torch.nn.grad's for the backward pass), NCHW numpy arrays
in and out, dtype kept. Every argument is checked, and both directions' algorithms chosen,
before any work starts.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from convbench.api.checks import (
    IntPair,
    batched,
    check_array,
    check_same_dtype,
    pick,
    unbatched,
)
from convbench.problems import ConvProblem, PaddingArg, positive_int
from convbench.problems.transpose import ConvTransposeProblem

def conv_problem(
    x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, stride: int | tuple[int, int],
    padding: PaddingArg, dilation: int | tuple[int, int], groups: int,
) -> ConvProblem:
    """The ConvProblem that these arguments describe (x batched or not), every mismatch named."""
    k, cg, r, s = w.shape
    n, (c, h, width) = (1 if x.ndim == 3 else x.shape[0]), x.shape[-3:]
    positive_int("groups", groups)
    if cg * groups != c:
        raise ValueError(
            f"w.shape[1] * groups = {cg} * {groups} must equal the input channels C = {c} "
            f"(x.shape={x.shape}, w.shape={w.shape})"
        )
    if bias is not None and bias.shape != (k,):
        raise ValueError(f"bias must have shape ({k},) to match w.shape[0], got {bias.shape}")
    return ConvProblem(
        n, c, h, width, k, r, s, stride=stride, padding=padding, dilation=dilation,  # type: ignore[arg-type]
        groups=groups, bias=bias is not None, dtype=x.dtype.name,
    )


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int | tuple[int, int] = 1,
    padding: PaddingArg = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    *,
    algo: str = "auto",
) -> np.ndarray:
    """2-D convolution (cross-correlation, as torch): x (N, C, H, W) or (C, H, W),
    w (K, C/groups, R, S), bias (K,) -> (N, K, OH, OW), in x's dtype.

    Raises ValueError naming the argument for invalid input, and `Unsupported` (a ValueError)
    with the algorithm's reason when `algo` cannot run this problem.
    """
    check_array("x", x, (3, 4))
    check_array("w", w, (4,))
    if bias is not None:
        check_array("bias", bias, (1,))
    check_same_dtype(x=x, w=w, bias=bias)
    problem = conv_problem(x, w, bias, stride, padding, dilation, groups)
    algorithm = pick(problem, algo)
    return unbatched(algorithm.fn(problem, batched(x), w, bias), x)


def transpose_problem(
    x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, stride: IntPair, padding: IntPair,
    output_padding: IntPair, groups: int, dilation: IntPair,
) -> ConvTransposeProblem:
    """The ConvTransposeProblem these arguments describe; weights (C, K/groups, R, S)."""
    c_w, kg, r, s = w.shape
    n, (c, h, width) = (1 if x.ndim == 3 else x.shape[0]), x.shape[-3:]
    groups = positive_int("groups", groups)
    if c_w != c:
        raise ValueError(f"w.shape[0] = {c_w} must equal the input channels C = {c} "
                         f"(x.shape={x.shape}, w.shape={w.shape})")
    if bias is not None and bias.shape != (kg * groups,):
        raise ValueError(f"bias must have shape ({kg * groups},) = w.shape[1] * groups, "
                         f"got {bias.shape}")
    return ConvTransposeProblem(
        n, c, h, width, kg * groups, r, s, stride=stride, padding=padding,  # type: ignore[arg-type]
        output_padding=output_padding, dilation=dilation, groups=groups,  # type: ignore[arg-type]
        bias=bias is not None, dtype=x.dtype.name,
    )


def conv_transpose2d(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    output_padding: IntPair = 0,
    groups: int = 1,
    dilation: IntPair = 1,
    *,
    algo: str = "auto",
) -> np.ndarray:
    """2-D transposed convolution, as torch: x (N, C, H, W) or (C, H, W), w (C, K/groups, R, S),
    bias (K,) -> (N, K, OH, OW) with OH = (H-1)*stride - 2*padding + dilation*(R-1) +
    output_padding + 1, in x's dtype. output_padding must be smaller than stride or dilation.
    """
    check_array("x", x, (3, 4))
    check_array("w", w, (4,))
    if bias is not None:
        check_array("bias", bias, (1,))
    check_same_dtype(x=x, w=w, bias=bias)
    problem = transpose_problem(x, w, bias, stride, padding, output_padding, groups, dilation)
    algorithm = pick(problem, algo)
    return unbatched(algorithm.fn(problem, batched(x), w, bias), x)


def _check_grad_out(grad_out: np.ndarray, x: np.ndarray, forward: ConvProblem) -> None:
    expected = forward.output_shape if x.ndim == 4 else forward.output_shape[1:]
    if grad_out.shape != expected:
        raise ValueError(f"grad_out must have the forward output's shape {expected}, "
                         f"got {grad_out.shape}")


def conv2d_backward(
    grad_out: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    stride: IntPair = 1,
    padding: PaddingArg = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    *,
    algo: str = "auto",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The gradients of conv2d(x, w, bias, stride, padding, dilation, groups) given grad_out,
    the gradient of its output: (grad_x, grad_w, grad_bias), shaped like x, w and (K,).

    grad_x is the bwd_data pass (grad_out convolved with the flipped kernel), grad_w the
    bwd_weight pass (x correlated with grad_out), grad_bias the sum of grad_out over N, OH, OW.
    """
    check_array("grad_out", grad_out, (3, 4))
    check_array("x", x, (3, 4))
    check_array("w", w, (4,))
    check_same_dtype(grad_out=grad_out, x=x, w=w)
    forward = conv_problem(x, w, None, stride, padding, dilation, groups)
    _check_grad_out(grad_out, x, forward)
    data = replace(forward, direction="bwd_data")
    weight = replace(forward, direction="bwd_weight", bias=True)
    data_algorithm, weight_algorithm = pick(data, algo), pick(weight, algo)
    grad = batched(grad_out)
    grad_x = data_algorithm.fn(data, grad, w)
    grad_w, grad_bias = weight_algorithm.fn(weight, grad, batched(x))
    return unbatched(grad_x, x), grad_w, grad_bias
