"""Pooling on the strided window view that convolution uses: max or mean over the window axes.

Forward: pad (with -inf for max, zeros for average; ceil mode pads on past the edge), view the
windows as (N, C, R, S, OH, OW) with no copy, and reduce over (R, S), tap by tap where there are
more outputs than taps (see reduce_windows). Backward: one pass per window tap, adding each
output's gradient to the pixel the tap read (a strided slice of the padded gradient): to the
argmax's tap only (max; argmax keeps the first maximum in scan order, torch's tie rule) or to
every tap, divided by the window's divisor (average). Array-API code: views, no copies, on
numpy, cupy and torch; gathers on libraries without strides.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from convbench.algorithms.pool.common import divisor_like
from convbench.algorithms.registry import register
from convbench.algorithms.windows import crop, pad_for_windows, padded_size, tap_index, windows
from convbench.backends import ARRAY_API_BACKENDS
from convbench.backends.xp import (
    Array, add_into, argmax, contiguous, device, namespace, reduce_view)
from convbench.problems import PoolProblem


def _padded_copy_elements(p: PoolProblem) -> int:
    """The padded input's elements where padding copies it (pad_for_windows); 0 where not."""
    size = padded_size(p)
    return 0 if size == (p.h, p.w) else p.n * p.c * math.prod(size)


def _folds(p: PoolProblem) -> bool:
    """Whether the forward folds taps (more outputs than taps) rather than reducing the view."""
    return p.out_h * p.out_w >= p.r * p.s


def _workspace_fwd(p: PoolProblem) -> int:
    """The padded copy, and one output more: the fold's previous result, or the average's sums
    before the divide (a reduced view's max needs none)."""
    outputs = math.prod(p.output_shape)
    extra = outputs if _folds(p) or p.kind == "avg" else 0
    return (_padded_copy_elements(p) + extra) * p.itemsize


def _workspace_bwd(p: PoolProblem) -> int:
    """As the reading counts it: the peak less the output. Average: the shares, and the padded
    gradient where padding makes the output a copy of its middle. Max: the peak comes before the
    gradient exists, in the argmax: the padded input, the windows' copy and numpy argmax's own
    copy of it (the reduced axis moved last, unless it is: one output per image), and the argmax
    (int64); while the taps scatter, the argmax, one tap's mask and share, and the padded
    gradient beyond the output."""
    outputs, padded = math.prod(p.output_shape), _padded_copy_elements(p)
    if p.kind == "avg":
        return (padded + outputs) * p.itemsize
    copies = 1 if p.out_h * p.out_w == 1 else 2
    finding = (padded + copies * outputs * p.r * p.s - math.prod(p.input_shape)) * p.itemsize
    scattering = padded * p.itemsize + outputs * (p.itemsize + 1)
    return max(finding, scattering) + outputs * 8


def _fold_taps(p: PoolProblem, x_pad: Array, combine: Callable[[Array, Array], Array]) -> Array:
    """(N, C, OH, OW): `combine` folded over the R*S taps (each an (N, C, OH, OW) view of the
    padded input), in scan order."""
    taps = [x_pad[tap_index(p, r, s)] for r in range(p.r) for s in range(p.s)]
    folded = namespace(x_pad).asarray(taps[0], copy=True)  # never a view of the input
    for pixels in taps[1:]:
        folded = combine(folded, pixels)
    return folded


def reduce_windows(p: PoolProblem, x_pad: Array, kind: str) -> Array:
    """(N, C, OH, OW): each window's max or sum. With more outputs than taps, the taps are
    folded: numpy walks a reduction over two axes of the 6-D window view in short strided runs,
    an order of magnitude slower. With few outputs and large windows (global pooling), one
    reduction over the view takes fewer calls."""
    if not _folds(p):
        return reduce_view(windows(x_pad, p), kind, axis=(2, 3))  # (N, C, R, S, OH, OW) view
    xp = namespace(x_pad)
    return _fold_taps(p, x_pad, xp.maximum if kind == "max" else xp.add)


@register("max_pool2d", "windowed", backends=ARRAY_API_BACKENDS, per_side=True, exact=True,
          workspace_bytes=_workspace_fwd, summary="max over the windows of a strided view")
def max_pool2d_windowed(p: PoolProblem, x: Array) -> Array:
    return reduce_windows(p, pad_for_windows(x, p, -math.inf), "max")


@register("avg_pool2d", "windowed", backends=ARRAY_API_BACKENDS, per_side=True, workspace_bytes=_workspace_fwd,
          summary="sum over the windows of a strided view, / torch's divisor")
def avg_pool2d_windowed(p: PoolProblem, x: Array) -> Array:
    return reduce_windows(p, pad_for_windows(x, p), "sum") / divisor_like(p, x)


def first_argmax(p: PoolProblem, x: Array) -> Array:
    """(N, C, OH, OW): the tap r*S + s of each window's first maximum in scan order."""
    win = windows(pad_for_windows(x, p, -math.inf), p)  # (N, C, R, S, OH, OW) view
    taps = namespace(x).reshape(win, (p.n, p.c, p.r * p.s, p.out_h, p.out_w))  # copies
    return argmax(taps, axis=2)


def _padded_zeros(p: PoolProblem, like: Array) -> Array:
    """(N, C, HP, WP): a zero gradient over the padded input, on `like`'s device."""
    xp = namespace(like)
    return xp.zeros((p.n, p.c, *padded_size(p)), dtype=like.dtype, device=device(like))


@register("max_pool2d_backward", "windowed", backends=ARRAY_API_BACKENDS, per_side=True, exact=True,
          workspace_bytes=_workspace_bwd,
          summary="argmax over the window view, then one scatter-add per tap")
def max_pool2d_backward_windowed(p: PoolProblem, grad_out: Array, x: Array) -> Array:
    xp, winner = namespace(grad_out, x), first_argmax(p, x)  # (N, C, OH, OW)
    grad_pad = _padded_zeros(p, grad_out)
    for r in range(p.r):
        for s in range(p.s):
            add_into(grad_pad, tap_index(p, r, s), xp.where(winner == r * p.s + s, grad_out, 0.0))
    return contiguous(crop(grad_pad, p))


@register("avg_pool2d_backward", "windowed", backends=ARRAY_API_BACKENDS, per_side=True,
          workspace_bytes=_workspace_bwd,
          summary="each gradient / divisor added to every tap of its window")
def avg_pool2d_backward_windowed(p: PoolProblem, grad_out: Array, x: Array) -> Array:
    share = grad_out / divisor_like(p, grad_out)  # (N, C, OH, OW)
    grad_pad = _padded_zeros(p, grad_out)
    for r in range(p.r):
        for s in range(p.s):
            add_into(grad_pad, tap_index(p, r, s), share)
    return contiguous(crop(grad_pad, p))
