"""The library API of pooling for ranks 1-3, forward and backward, with torch.nn.functional's
semantics and argument names.

Batched (N, C, *spatial) or unbatched (C, *spatial) numpy arrays in and out, dtype kept.
kernel_size, stride, padding and dilation take an int or one int per axis (padding also
(before, after) pairs per axis, as TensorFlow's SAME needs; convbench.tf_padding and
convbench.onnx_padding compute them);
stride defaults to the window. Every argument is checked before any work starts, with torch's
rules: padding at most half the window, the window no larger than the padded input, average
pooling without dilation.

Defined answers at the edges (torch's where torch defines one):
- a window holding a NaN gives NaN, and its gradient (every algorithm's backward pass, and the
  backward by indices) and its index go to the window's last NaN in scan order (torch's CPU
  rule); otherwise ties go to the first maximum;
- a max-pool window lying wholly in the padding (possible with dilation) gives -inf, its
  gradient goes nowhere, and its index is -1 (torch reports a position outside the input);
- `return_indices=True` returns (values, indices) with torch's flat index into each (N, C)
  plane of the input, and max_pool*_backward(..., indices=...) routes the gradient by them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from convbench.api.checks import (
    SizesArg,
    batch_of,
    batched,
    check_array,
    check_same_dtype,
    flag,
    layout_of,
    pick,
    run,
    unbatched,
)
from convbench.problems import PoolProblem, as_tuple

AXES = {1: "(N, C, W)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


def pool_problem(
    kind: str, x: np.ndarray, kernel_size: SizesArg, stride: SizesArg | None, padding: Any,
    dilation: SizesArg, ceil_mode: bool, count_include_pad: bool, direction: str = "fwd",
    rank: int = 2, divisor_override: int | None = None,
) -> PoolProblem:
    """The PoolProblem these arguments describe, x batched or not (a batch of 0 as 1)."""
    kernel = as_tuple("kernel_size", kernel_size, rank, 1)
    c, *size = x.shape[-rank - 1:]
    return PoolProblem(
        kind, max(batch_of(x, rank), 1), c, size=tuple(size), kernel=kernel, stride=stride,
        padding=padding, dilation=dilation, ceil_mode=flag("ceil_mode", ceil_mode),
        count_include_pad=flag("count_include_pad", count_include_pad), dtype=x.dtype.name,
        direction=direction, divisor_override=divisor_override, layout=layout_of(x),
    )


def _forward(problem: PoolProblem, x: np.ndarray, algo: str, rank: int) -> np.ndarray:
    if batch_of(x, rank) == 0:
        pick(problem, algo)
        return unbatched(np.zeros((0, *problem.output_shape[1:]), x.dtype), x, rank)
    return unbatched(run(problem, algo, batched(x, rank)), x, rank)


def _check_grad_out(problem: PoolProblem, grad_out: Any, x: np.ndarray, rank: int) -> None:
    check_array("grad_out", grad_out, (rank + 1, rank + 2))
    check_same_dtype(grad_out=grad_out, x=x)
    shape = problem.output_shape[1:]
    expected = shape if x.ndim == rank + 1 else (x.shape[0], *shape)
    if grad_out.shape != expected:
        raise ValueError(f"grad_out must have the forward output's shape {expected}, "
                         f"got {grad_out.shape}")


def _backward(problem: PoolProblem, grad_out: np.ndarray, x: np.ndarray, algo: str,
              rank: int) -> np.ndarray:
    _check_grad_out(problem, grad_out, x, rank)
    if batch_of(x, rank) == 0:
        pick(problem, algo)
        return np.zeros_like(x)
    return unbatched(run(problem, algo, batched(grad_out, rank), batched(x, rank)), x, rank)


def max_indices(p: PoolProblem, x: np.ndarray) -> np.ndarray:
    """torch's indices of max pooling: for each output, the flat index (in its (N, C) plane)
    of the window's first maximum, or of its last NaN; -1 for a window wholly in padding."""
    extent = [(o - 1) * s + e for o, s, e in zip(p.out_size, p.stride, p.kernel_extent,
                                                  strict=True)]
    after = [max(e - i - b, 0) for e, i, b in zip(extent, p.size, p.padding, strict=True)]
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), *zip(p.padding, after)),
                    constant_values=-np.inf)
    strides = padded.strides[2:]
    view = np.lib.stride_tricks.as_strided(
        padded, (*padded.shape[:2], *p.out_size, *p.kernel),
        (*padded.strides[:2], *(s * t for s, t in zip(p.stride, strides, strict=True)),
         *(d * t for d, t in zip(p.dilation, strides, strict=True))), writeable=False)
    windows = view.reshape(*view.shape[: 2 + p.rank], -1)
    nan = np.isnan(windows)
    last_nan = windows.shape[-1] - 1 - np.argmax(nan[..., ::-1], axis=-1)
    offset = np.where(nan.any(axis=-1), last_nan, np.argmax(np.where(nan, -np.inf, windows),
                                                            axis=-1))
    taps = np.unravel_index(offset, p.kernel)
    grid = np.indices(p.out_size, sparse=True)
    coords = [o * s - b + t * d for o, s, b, t, d in zip(grid, p.stride, p.padding, taps,
                                                          p.dilation, strict=True)]
    inside = np.all([(0 <= c) & (c < i) for c, i in zip(coords, p.size, strict=True)], axis=0)
    clipped = [np.clip(c, 0, i - 1) for c, i in zip(coords, p.size, strict=True)]
    flat = np.ravel_multi_index(tuple(np.broadcast_arrays(*clipped)), p.size)
    return np.where(inside, flat, -1).astype(np.int64)


def unpool_gradient(grad_out: np.ndarray, indices: np.ndarray, size: tuple[int, ...],
                    dtype: Any) -> np.ndarray:
    """max pooling's backward from its indices: each output's gradient added at its index."""
    n, c = grad_out.shape[:2]
    grad = np.zeros((n, c, math.prod(size)), dtype=dtype)
    flat_index = indices.reshape(n, c, -1)
    values = grad_out.reshape(n, c, -1)
    keep = flat_index >= 0
    rows = np.broadcast_to(np.arange(n * c).reshape(n, c, 1), flat_index.shape)
    np.add.at(grad.reshape(n * c, -1), (rows[keep], flat_index[keep]), values[keep])
    return grad.reshape(n, c, *size)


def _named(fn: Callable[..., Any], name: str, doc: str) -> Callable[..., Any]:
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return fn


def _max_pool(rank: int) -> Callable[..., Any]:
    def max_pool(x: np.ndarray, kernel_size: SizesArg, stride: SizesArg | None = None,
                 padding: Any = 0, dilation: SizesArg = 1, ceil_mode: bool = False,
                 return_indices: bool = False, *, algo: str = "auto") -> Any:
        check_array("x", x, (rank + 1, rank + 2))
        problem = pool_problem("max", x, kernel_size, stride, padding, dilation, ceil_mode,
                               True, rank=rank)
        y = _forward(problem, x, algo, rank)
        if not flag("return_indices", return_indices):
            return y
        if batch_of(x, rank) == 0:
            return y, np.zeros(y.shape, dtype=np.int64)
        indices = max_indices(problem, batched(x, rank))
        return y, unbatched(indices, x, rank)

    return _named(max_pool, f"max_pool{rank}d", f"""Max pooling: x {AXES[rank]} or
    unbatched -> (N, C, *out); with return_indices=True, (values, indices) as torch.""")


def _avg_pool(rank: int) -> Callable[..., np.ndarray]:
    def avg_pool(x: np.ndarray, kernel_size: SizesArg, stride: SizesArg | None = None,
                 padding: Any = 0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None, *, algo: str = "auto") -> np.ndarray:
        check_array("x", x, (rank + 1, rank + 2))
        problem = pool_problem("avg", x, kernel_size, stride, padding, 1, ceil_mode,
                               count_include_pad, rank=rank, divisor_override=divisor_override)
        return _forward(problem, x, algo, rank)

    return _named(avg_pool, f"avg_pool{rank}d", f"""Average pooling: x {AXES[rank]} or
    unbatched -> (N, C, *out); the divisor is torch's (or divisor_override).""")


def _global_avg_pool(rank: int) -> Callable[..., np.ndarray]:
    def global_avg_pool(x: np.ndarray, *, algo: str = "auto") -> np.ndarray:
        check_array("x", x, (rank + 1, rank + 2))
        return _AVG[rank](x, tuple(x.shape[-rank:]), algo=algo)

    return _named(global_avg_pool, f"global_avg_pool{rank}d", f"""The mean over the spatial
    axes: x {AXES[rank]} or unbatched -> (N, C, 1, ...).""")


def _max_pool_backward(rank: int) -> Callable[..., np.ndarray]:
    def max_pool_backward(grad_out: np.ndarray, x: np.ndarray, kernel_size: SizesArg,
                          stride: SizesArg | None = None, padding: Any = 0,
                          dilation: SizesArg = 1, ceil_mode: bool = False, *,
                          indices: np.ndarray | None = None, algo: str = "auto") -> np.ndarray:
        check_array("x", x, (rank + 1, rank + 2))
        problem = pool_problem("max", x, kernel_size, stride, padding, dilation, ceil_mode,
                               True, "bwd_data", rank)
        if indices is None:
            return _backward(problem, grad_out, x, algo, rank)
        _check_grad_out(problem, grad_out, x, rank)
        if not isinstance(indices, np.ndarray) or indices.shape != grad_out.shape or \
                indices.dtype.kind not in "iu":
            raise ValueError(f"indices must be an integer array of grad_out's shape "
                             f"{grad_out.shape}, got {getattr(indices, 'shape', indices)!r}")
        if indices.size and (indices.max() >= math.prod(problem.size) or indices.min() < -1):
            raise ValueError(f"indices must lie in [-1, {math.prod(problem.size)}) (flat "
                             f"positions in one plane of x), got [{indices.min()}, "
                             f"{indices.max()}]")
        grad = unpool_gradient(batched(grad_out, rank), batched(indices, rank), problem.size,
                               x.dtype)
        return unbatched(grad, x, rank)

    return _named(max_pool_backward, f"max_pool{rank}d_backward", f"""grad_x of
    max_pool{rank}d(x, ...): each output's gradient goes to its window's maximum (the first in
    scan order on ties, the last NaN if any, as torch), or to `indices` when given (as
    max_pool{rank}d(..., return_indices=True) returns them).""")


def _avg_pool_backward(rank: int) -> Callable[..., np.ndarray]:
    def avg_pool_backward(grad_out: np.ndarray, x: np.ndarray, kernel_size: SizesArg,
                          stride: SizesArg | None = None, padding: Any = 0,
                          ceil_mode: bool = False, count_include_pad: bool = True,
                          divisor_override: int | None = None, *,
                          algo: str = "auto") -> np.ndarray:
        check_array("x", x, (rank + 1, rank + 2))
        problem = pool_problem("avg", x, kernel_size, stride, padding, 1, ceil_mode,
                               count_include_pad, "bwd_data", rank, divisor_override)
        return _backward(problem, grad_out, x, algo, rank)

    return _named(avg_pool_backward, f"avg_pool{rank}d_backward", f"""grad_x of
    avg_pool{rank}d(x, ...): each output's gradient spread evenly over its window.""")


max_pool1d, max_pool2d, max_pool3d = (_max_pool(r) for r in (1, 2, 3))
avg_pool1d, avg_pool2d, avg_pool3d = (_avg_pool(r) for r in (1, 2, 3))
_AVG = {1: avg_pool1d, 2: avg_pool2d, 3: avg_pool3d}
global_avg_pool1d, global_avg_pool2d, global_avg_pool3d = (_global_avg_pool(r) for r in (1, 2, 3))
max_pool1d_backward, max_pool2d_backward, max_pool3d_backward = (
    _max_pool_backward(r) for r in (1, 2, 3))
avg_pool1d_backward, avg_pool2d_backward, avg_pool3d_backward = (
    _avg_pool_backward(r) for r in (1, 2, 3))
