"""Pooling on the strided window view that convolution uses: max or mean over the window axes.

Forward: pad (with -inf for max, zeros for average; ceil mode pads on past the edge), view the
windows as (N, C, *kernel, *out) with no copy, and reduce over the kernel axes, tap by tap where
there are more outputs than taps (see reduce_windows). Backward: one pass per window tap,
adding each output's gradient to the pixel the tap read (a strided slice of the padded
gradient): to the winning tap only (max: the first maximum in scan order, torch's tie rule, or
the last NaN, torch's NaN rule) or to every tap, divided by the window's divisor (average). A
max window lying wholly in the padding is -inf, and its gradient lands in the padding, cropped
away: none, as torch; one whose inputs are all -inf sends it to its first tap inside the input,
as torch. Any rank 2 or 3, in either memory layout (the padding and the results
keep the input's). Array-API code: views, no copies, on numpy, cupy and torch; gathers on
libraries without strides.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator

from convbench.algorithms.pool.common import divisor_like, holds_nan, in_layout, winning_tap
from convbench.algorithms.registry import register
from convbench.algorithms.windows import crop, pad_for_windows, padded_size, tap_index, windows
from convbench.backends import ARRAY_API_BACKENDS
from convbench.backends.xp import Array, add_into, device, namespace, reduce_view
from convbench.problems import LAYOUTS, PoolProblem


def _padded_copy_elements(p: PoolProblem) -> int:
    """The padded input's elements where padding copies it (pad_for_windows); 0 where not."""
    size = padded_size(p)
    return 0 if size == p.size else p.n * p.c * math.prod(size)


def _folds(p: PoolProblem) -> bool:
    """Whether the forward folds taps (more outputs than taps) rather than reducing the view."""
    return p.pixels >= p.window


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
    gradient beyond the output. An input holding a NaN adds the NaN search's copies (not
    modelled: a benchmark's inputs hold none)."""
    outputs, padded = math.prod(p.output_shape), _padded_copy_elements(p)
    if p.kind == "avg":
        return (padded + outputs) * p.itemsize
    copies = 1 if p.pixels == 1 else 2
    finding = (padded + copies * outputs * p.window - math.prod(p.input_shape)) * p.itemsize
    scattering = padded * p.itemsize + outputs * (p.itemsize + 1)
    return max(finding, scattering) + outputs * 8


def _scan(p: PoolProblem) -> Iterator[tuple[int, ...]]:
    """Every kernel tap, one int per axis, in scan order (the last axis fastest)."""
    return itertools.product(*map(range, p.kernel))


def _fold_taps(p: PoolProblem, x_pad: Array, combine: Callable[[Array, Array], Array]) -> Array:
    """(N, C, *out): `combine` folded over the window's taps (each an (N, C, *out) view of the
    padded input), in scan order."""
    taps = [x_pad[tap_index(p, *tap)] for tap in _scan(p)]
    folded = namespace(x_pad).asarray(taps[0], copy=True)  # never a view of the input
    for pixels in taps[1:]:
        folded = combine(folded, pixels)
    return folded


def reduce_windows(p: PoolProblem, x_pad: Array, kind: str) -> Array:
    """(N, C, *out): each window's max or sum. With more outputs than taps, the taps are
    folded: numpy walks a reduction over the kernel axes of the window view in short strided
    runs, an order of magnitude slower. With few outputs and large windows (global pooling),
    one reduction over the view takes fewer calls."""
    if not _folds(p):
        kernel_axes = tuple(range(2, 2 + p.rank))
        return reduce_view(windows(x_pad, p), kind, axis=kernel_axes)  # a (N, C, *k, *out) view
    xp = namespace(x_pad)
    return _fold_taps(p, x_pad, xp.maximum if kind == "max" else xp.add)


@register("max_pool2d", "windowed", backends=ARRAY_API_BACKENDS, per_side=True, ranks=(2, 3),
          layouts=LAYOUTS, exact=True, workspace_bytes=_workspace_fwd,
          summary="max over the windows of a strided view")
def max_pool2d_windowed(p: PoolProblem, x: Array) -> Array:
    return in_layout(p, reduce_windows(p, pad_for_windows(x, p, -math.inf), "max"))


@register("avg_pool2d", "windowed", backends=ARRAY_API_BACKENDS, per_side=True, ranks=(2, 3),
          layouts=LAYOUTS, workspace_bytes=_workspace_fwd,
          summary="sum over the windows of a strided view, / torch's divisor")
def avg_pool2d_windowed(p: PoolProblem, x: Array) -> Array:
    sums = reduce_windows(p, pad_for_windows(x, p), "sum")
    return in_layout(p, sums / divisor_like(p, x))


def winners(p: PoolProblem, x: Array) -> Array:
    """(N, C, *out): the tap (its place in scan order) each window's gradient goes to: the
    first maximum, or the last NaN of a window holding one (torch's rules). A window whose
    values inside the input are all -inf ties with its padding: torch's gradient goes to its
    first tap inside the input, never to the padding (where it would be cropped away)."""
    xp = namespace(x)
    win = windows(pad_for_windows(x, p, -math.inf), p)  # (N, C, *kernel, *out) view
    taps = xp.reshape(win, (p.n, p.c, p.window, *p.out_size))  # copies
    winner = winning_tap(taps, 2, holds_nan(x))
    if padded_size(p) == tuple(p.size) or not bool(xp.any(x == -math.inf)):
        return winner
    ones = xp.ones(x.shape, dtype=x.dtype, device=device(x))
    inside = xp.reshape(windows(pad_for_windows(ones, p, 0.0), p),
                        (p.n, p.c, p.window, *p.out_size))  # 1 inside the input, 0 padding
    tied = xp.all(taps == -math.inf, axis=2) & xp.any(inside > 0, axis=2)
    first_inside = xp.astype(xp.argmax(inside, axis=2), winner.dtype)
    return xp.where(tied, first_inside, winner)


def _padded_zeros(p: PoolProblem, like: Array) -> Array:
    """(N, C, *padded): a zero gradient over the padded input, on `like`'s device, in the
    problem's memory layout."""
    xp, on, padded = namespace(like), device(like), padded_size(p)
    if not p.channels_last:
        return xp.zeros((p.n, p.c, *padded), dtype=like.dtype, device=on)
    zeros = xp.zeros((p.n, *padded, p.c), dtype=like.dtype, device=on)  # (N, *padded, C)
    return xp.permute_dims(zeros, (0, p.rank + 1, *range(1, p.rank + 1)))


@register("max_pool2d_backward", "windowed", backends=ARRAY_API_BACKENDS, per_side=True,
          ranks=(2, 3), layouts=LAYOUTS, exact=True, workspace_bytes=_workspace_bwd,
          summary="argmax over the window view, then one scatter-add per tap")
def max_pool2d_backward_windowed(p: PoolProblem, grad_out: Array, x: Array) -> Array:
    xp, winner = namespace(grad_out, x), winners(p, x)  # (N, C, *out)
    grad_pad = _padded_zeros(p, grad_out)
    for k, tap in enumerate(_scan(p)):
        add_into(grad_pad, tap_index(p, *tap), xp.where(winner == k, grad_out, 0.0))
    return in_layout(p, crop(grad_pad, p))


@register("avg_pool2d_backward", "windowed", backends=ARRAY_API_BACKENDS, per_side=True,
          ranks=(2, 3), layouts=LAYOUTS, workspace_bytes=_workspace_bwd,
          summary="each gradient / divisor added to every tap of its window")
def avg_pool2d_backward_windowed(p: PoolProblem, grad_out: Array, x: Array) -> Array:
    share = grad_out / divisor_like(p, grad_out)  # (N, C, *out)
    grad_pad = _padded_zeros(p, grad_out)
    for tap in _scan(p):
        add_into(grad_pad, tap_index(p, *tap), share)
    return in_layout(p, crop(grad_pad, p))
