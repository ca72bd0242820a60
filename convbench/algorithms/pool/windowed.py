"""Pooling on the strided window view that convolution uses: max or mean over the window axes.

Forward: pad (with -inf for max, zeros for average; ceil mode pads on past the edge), view the
windows as (N, C, R, S, OH, OW) with no copy, and reduce over (R, S). Backward: one pass per
window tap, adding each output's gradient to the pixel the tap read (a writable view of the
padded gradient): to the argmax's tap only (max; np.argmax keeps the first maximum in scan
order, torch's tie rule) or to every tap, divided by the window's divisor (average).
"""

from __future__ import annotations

import math

import numpy as np

from convbench.algorithms.pool.common import divisor
from convbench.algorithms.windows import crop, pad_for_windows, padded_size, tap, windows
from convbench.problems import PoolProblem
from convbench.algorithms.registry import register


def _padded_elements(p: PoolProblem) -> int:
    return p.n * p.c * math.prod(padded_size(p))


def _workspace_fwd(p: PoolProblem) -> int:
    """The padded input, and for the average the sums before the divide."""
    outputs = math.prod(p.output_shape) if p.kind == "avg" else 0
    return (_padded_elements(p) + outputs) * p.itemsize


def _workspace_bwd(p: PoolProblem) -> int:
    """The padded gradient and one tap's share; max adds the padded input, the windows' copy and
    the argmax (int64)."""
    outputs = math.prod(p.output_shape)
    common = (_padded_elements(p) + outputs) * p.itemsize
    if p.kind == "avg":
        return common + outputs * p.itemsize
    return common + (_padded_elements(p) + outputs * p.r * p.s) * p.itemsize + outputs * 8


@register("max_pool2d", "windowed", exact=True, workspace_bytes=_workspace_fwd,
          summary="max over the window axes of a strided view")
def max_pool2d_windowed(p: PoolProblem, x: np.ndarray) -> np.ndarray:
    win = windows(pad_for_windows(x, p, -np.inf), p)  # (N, C, R, S, OH, OW) view
    return win.max(axis=(2, 3))


@register("avg_pool2d", "windowed", workspace_bytes=_workspace_fwd,
          summary="sum over the window axes of a strided view, / torch's divisor")
def avg_pool2d_windowed(p: PoolProblem, x: np.ndarray) -> np.ndarray:
    win = windows(pad_for_windows(x, p), p)  # (N, C, R, S, OH, OW) view
    return win.sum(axis=(2, 3)) / divisor(p)


def first_argmax(p: PoolProblem, x: np.ndarray) -> np.ndarray:
    """(N, C, OH, OW): the tap r*S + s of each window's first maximum in scan order."""
    win = windows(pad_for_windows(x, p, -np.inf), p)  # (N, C, R, S, OH, OW) view
    return win.reshape(p.n, p.c, p.r * p.s, p.out_h, p.out_w).argmax(axis=2)  # copies


@register("max_pool2d_backward", "windowed", exact=True, workspace_bytes=_workspace_bwd,
          summary="argmax over the window view, then one scatter-add per tap")
def max_pool2d_backward_windowed(p: PoolProblem, grad_out: np.ndarray,
                                 x: np.ndarray) -> np.ndarray:
    winner = first_argmax(p, x)
    grad_pad = np.zeros((p.n, p.c, *padded_size(p)), dtype=grad_out.dtype)
    for r in range(p.r):
        for s in range(p.s):
            pixels = tap(grad_pad, p, r, s)  # (N, C, OH, OW) writable view
            pixels += np.where(winner == r * p.s + s, grad_out, 0)
    return np.ascontiguousarray(crop(grad_pad, p))


@register("avg_pool2d_backward", "windowed", workspace_bytes=_workspace_bwd,
          summary="each gradient / divisor added to every tap of its window")
def avg_pool2d_backward_windowed(p: PoolProblem, grad_out: np.ndarray,
                                 x: np.ndarray) -> np.ndarray:
    share = grad_out / divisor(p)  # (N, C, OH, OW)
    grad_pad = np.zeros((p.n, p.c, *padded_size(p)), dtype=grad_out.dtype)
    for r in range(p.r):
        for s in range(p.s):
            pixels = tap(grad_pad, p, r, s)  # (N, C, OH, OW) writable view
            pixels += share
    return np.ascontiguousarray(crop(grad_pad, p))
