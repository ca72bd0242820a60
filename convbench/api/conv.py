"""The library API of convolution for ranks 1-3: conv{1,2,3}d, conv_transpose{1,2,3}d and
conv{1,2,3}d_backward.

torch.nn.functional's semantics (and torch.nn.grad's for the backward pass) and argument names,
numpy arrays in and out (batched (N, C, *spatial) or unbatched (C, *spatial)), dtype kept; an
input lying channels last in memory gives a channels-last result, as torch does. `padding` takes
an int, one int per axis, 'same' (torch's rule, an even kernel extent included: the odd pixel
after), 'valid', or (before, after) pairs per axis (convbench.tf_padding and
convbench.onnx_padding turn TensorFlow's and ONNX's padding into those). A batch of 0 gives torch's empty result. Every argument is checked,
and every direction's algorithm chosen, before any work starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from convbench.api.checks import (
    SizesArg,
    batch_of,
    batched,
    check_array,
    check_same_dtype,
    layout_of,
    pick,
    run,
    to_channels_last,
    unbatched,
)
from convbench.problems import ConvProblem, PaddingArg, positive_int
from convbench.problems.transpose import ConvTransposeProblem

AXES = {1: "(N, C, W)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


def _check_inputs(rank: int, x: Any, w: Any, **more: Any) -> None:
    check_array("x", x, (rank + 1, rank + 2))
    check_array("w", w, (rank + 2,))
    for name, a in more.items():
        if a is not None:
            check_array(name, a, (1,) if name == "bias" else (rank + 1, rank + 2))
    check_same_dtype(x=x, w=w, **more)


def conv_problem(
    x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, stride: SizesArg, padding: PaddingArg,
    dilation: SizesArg, groups: int, rank: int = 2,
) -> ConvProblem:
    """The ConvProblem that these arguments describe (x batched or not; a batch of 0 is
    described as 1), every mismatch named."""
    k, cg, *kernel = w.shape
    c, *size = x.shape[-rank - 1:]
    positive_int("groups", groups)
    if cg * groups != c:
        raise ValueError(
            f"w.shape[1] * groups = {cg} * {groups} must equal the input channels C = {c} "
            f"(x.shape={x.shape}, w.shape={w.shape})"
        )
    if bias is not None and bias.shape != (k,):
        raise ValueError(f"bias must have shape ({k},) to match w.shape[0], got {bias.shape}")
    return ConvProblem(
        max(batch_of(x, rank), 1), c, k=k, size=tuple(size), kernel=tuple(kernel), stride=stride,
        padding=padding, dilation=dilation, groups=groups, bias=bias is not None,
        dtype=x.dtype.name, layout=layout_of(x),
    )


def _empty(shape: tuple[int, ...], like: np.ndarray, rank: int) -> np.ndarray:
    """torch's result for a batch of 0: zeros of the output's shape, N = 0."""
    return unbatched(np.zeros((0, *shape[1:]), dtype=like.dtype), like, rank)


# torch's Conv modules' padding_mode, as numpy.pad's mode.
PADDING_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
                 "circular": "wrap"}


def _padded_by_mode(x: np.ndarray, problem: ConvProblem, mode: str, rank: int) -> np.ndarray:
    """x padded as torch's Conv modules pad it for a padding_mode other than zeros."""
    if mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {', '.join(PADDING_MODES)}, got {mode!r}")
    sides = tuple(zip(problem.padding, problem.padding_after, strict=True))
    lead = ((0, 0),) * (x.ndim - rank)
    return np.pad(x, (*lead, *sides), mode=PADDING_MODES[mode])  # type: ignore[call-overload]


def _conv(rank: int) -> Callable[..., np.ndarray]:
    def conv(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None,
             stride: SizesArg = 1, padding: PaddingArg = 0, dilation: SizesArg = 1,
             groups: int = 1, *, padding_mode: str = "zeros", algo: str = "auto") -> np.ndarray:
        _check_inputs(rank, x, w, bias=bias)
        problem = conv_problem(x, w, bias, stride, padding, dilation, groups, rank)
        if padding_mode != "zeros":  # torch's Conv modules: pad by the mode, then no padding
            x = _padded_by_mode(x, problem, padding_mode, rank)
            problem = conv_problem(x, w, bias, stride, 0, dilation, groups, rank)
        if batch_of(x, rank) == 0:
            pick(problem, algo)
            return _empty(problem.output_shape, x, rank)
        return unbatched(run(problem, algo, batched(x, rank), w, bias), x, rank)

    return _named(conv, f"conv{rank}d", f"""{rank}-D convolution (cross-correlation, as torch):
    x {AXES[rank]} or unbatched, w (K, C/groups, *kernel), bias (K,) -> (N, K, *out), in x's
    dtype and memory layout. padding_mode (zeros, reflect, replicate, circular) is torch's
    Conv modules' argument: a mode other than zeros pads x by it before the convolution.

    Raises ValueError naming the argument for invalid input, and `Unsupported` (a ValueError)
    with the algorithm's reason when `algo` cannot run this problem.""")


def _named(fn: Callable[..., Any], name: str, doc: str) -> Callable[..., Any]:
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return fn


def transpose_problem(
    x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, stride: SizesArg, padding: Any,
    output_padding: SizesArg, groups: int, dilation: SizesArg, rank: int = 2,
) -> ConvTransposeProblem:
    """The ConvTransposeProblem these arguments describe; weights (C, K/groups, *kernel)."""
    c_w, kg, *kernel = w.shape
    c, *size = x.shape[-rank - 1:]
    groups = positive_int("groups", groups)
    if c_w != c:
        raise ValueError(f"w.shape[0] = {c_w} must equal the input channels C = {c} "
                         f"(x.shape={x.shape}, w.shape={w.shape})")
    if bias is not None and bias.shape != (kg * groups,):
        raise ValueError(f"bias must have shape ({kg * groups},) = w.shape[1] * groups, "
                         f"got {bias.shape}")
    return ConvTransposeProblem(
        max(batch_of(x, rank), 1), c, k=kg * groups, size=tuple(size), kernel=tuple(kernel),
        stride=stride, padding=padding, output_padding=output_padding, dilation=dilation,
        groups=groups, bias=bias is not None, dtype=x.dtype.name, layout=layout_of(x),
    )


def _conv_transpose(rank: int) -> Callable[..., np.ndarray]:
    def conv_transpose(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None,
                       stride: SizesArg = 1, padding: Any = 0, output_padding: SizesArg = 0,
                       groups: int = 1, dilation: SizesArg = 1, *,
                       algo: str = "auto") -> np.ndarray:
        _check_inputs(rank, x, w, bias=bias)
        problem = transpose_problem(x, w, bias, stride, padding, output_padding, groups,
                                    dilation, rank)
        if batch_of(x, rank) == 0:
            pick(problem, algo)
            return _empty(problem.output_shape, x, rank)
        return unbatched(run(problem, algo, batched(x, rank), w, bias), x, rank)

    return _named(conv_transpose, f"conv_transpose{rank}d", f"""{rank}-D transposed
    convolution, as torch: x {AXES[rank]} or unbatched, w (C, K/groups, *kernel), bias (K,) ->
    (N, K, *out) with out = (in-1)*stride - 2*padding + dilation*(kernel-1) + output_padding + 1,
    in x's dtype. output_padding must be smaller than stride or dilation.""")


def _check_grad_out(grad_out: np.ndarray, x: np.ndarray, forward: ConvProblem, rank: int) -> None:
    expected = forward.output_shape[1:] if x.ndim == rank + 1 else (x.shape[0],
                                                                      *forward.output_shape[1:])
    if grad_out.shape != expected:
        raise ValueError(f"grad_out must have the forward output's shape {expected}, "
                         f"got {grad_out.shape}")


def _conv_backward(rank: int) -> Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]]:
    def conv_backward(grad_out: np.ndarray, x: np.ndarray, w: np.ndarray,
                      stride: SizesArg = 1, padding: PaddingArg = 0, dilation: SizesArg = 1,
                      groups: int = 1, *,
                      algo: str = "auto") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        _check_inputs(rank, x, w, grad_out=grad_out)
        forward = conv_problem(x, w, None, stride, padding, dilation, groups, rank)
        _check_grad_out(grad_out, x, forward, rank)
        data = replace(forward, direction="bwd_data")
        weight = replace(forward, direction="bwd_weight", bias=True)
        pick(data, algo), pick(weight, algo)  # both refused before any work
        if batch_of(x, rank) == 0:
            return (np.zeros_like(x), np.zeros_like(w), np.zeros(w.shape[0], dtype=w.dtype))
        grad = batched(grad_out, rank)
        grad_x = run(data, algo, grad, w)
        grad_w, grad_bias = run(weight, algo, grad, batched(x, rank))
        if forward.layout == "nhwc":
            grad_x = to_channels_last(grad_x)
        return unbatched(grad_x, x, rank), grad_w, grad_bias

    return _named(conv_backward, f"conv{rank}d_backward", f"""The gradients of
    conv{rank}d(x, w, bias, stride, padding, dilation, groups) given grad_out, the gradient of
    its output: (grad_x, grad_w, grad_bias), shaped like x, w and (K,).

    grad_x is the bwd_data pass (grad_out convolved with the flipped kernel), grad_w the
    bwd_weight pass (x correlated with grad_out), grad_bias the sum of grad_out over N and the
    output's spatial axes.""")


conv1d, conv2d, conv3d = (_conv(r) for r in (1, 2, 3))
conv_transpose1d, conv_transpose2d, conv_transpose3d = (_conv_transpose(r) for r in (1, 2, 3))
conv1d_backward, conv2d_backward, conv3d_backward = (_conv_backward(r) for r in (1, 2, 3))
