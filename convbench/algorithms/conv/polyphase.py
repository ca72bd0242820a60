"""Polyphase Winograd: a strided convolution as one stride-1 Winograd convolution of the input's
polyphase components.

With stride s, output o reads padded input pixels s*o + t for taps t = s*j + a (phase a < s,
sub-tap j). Split both by phase: x_a[i] = x[s*i + a] and w_a[j] = w[s*j + a]; then
y[o] = sum_a sum_j x_a[o + j] w_a[j], a sum of s stride-1 correlations (s^2 in 2-D) with
sub-kernels of ceil((r - a) / s) taps: 2x2, 2x1, 1x2 and 1x1 for a 3x3 kernel at stride 2;
4x4 ... 3x3 for the 7x7 stem. Every phase reads the same output tiles, so the sub-kernels are
zero-padded to the largest, k = ceil(r / s), and the phases become extra input channels: the
problem is a stride-1 convolution of a (N, C*s^2, H/s, W/s) input (space-to-depth) with a
(K, C*s^2, k, k) kernel, run by Winograd F(alpha - k + 1, k). The alpha^2 channel GEMMs then
reduce over C*s^2 (one GEMM per frequency point for all phases, wider than C and closer to the
GEMM peak), and the output transform runs once, not once per phase.

Multiplies per output per (C, K) pair: s^2 * alpha^2 / m^2 against direct's r^2: at stride 2,
3x3 with alpha 6 (F(5,2)) 5.76 against 9; the 7x7 stem with alpha 8 (F(5,4)) 10.24 against 49.

Three ways to run it, each in one place below:
- the NCHW array version: the space-to-depth input is never built; the tiles of every phase
  are one strided view of the padded input, gathered once, chunk by chunk of channels, as
  winograd.py gathers stride-1 tiles;
- channels last (_channels_last): the phases' input side by side (phase_input), (phase,
  channel) order, then the channels-last pipeline (winograd_nhwc) on the stride-1 phase problem
  (phase_problem);
- compiled (numba, numpy arrays, _compiled): the same phase problem, its input written in one
  pass by layout_kernels.phases, run by the compiled pipeline (winograd_nhwc_kernels); NCHW
  inputs are put channels last and the result back.
2-D (rank 1 lifted), NCHW and channels-last memory, any padding per side, groups (NCHW only:
the (phase, channel) order would split them); stride >= 2 on some axis (stride 1 is plain
Winograd, winograd_f*), dilation 1.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np

from convbench.algorithms import cost
from convbench.algorithms.conv.winograd import (
    _nhwc_transforms,
    axis_transforms_like,
    output_cost_s,
    output_nchw,
    transforms_like,
)
from convbench.algorithms.conv import layout_kernels, winograd_nhwc, winograd_nhwc_kernels
from convbench.algorithms.conv.winograd_matrices import MATRICES
from convbench.algorithms.registry import register
from convbench.algorithms.windows import add_bias
from convbench.backends import ARRAY_API_BACKENDS, compiled
from convbench.backends.xp import (
    CPU_CHUNK_BYTES,
    Array,
    array_strides,
    cache_bytes,
    device,
    matmul,
    matmul_into,
    matmul_into_part,
    namespace,
    reshape_copy,
    strided,
)
from convbench.problems import LAYOUTS, ConvProblem

# Input tile alpha of each registered algorithm: the tile sets the sub-kernel's F(m, k).
FAMILY: dict[str, int] = {
    "polyphase_winograd_a4": 4, "polyphase_winograd_a6": 6, "polyphase_winograd_a8": 8,
}


@dataclass(frozen=True)
class Plan:
    """How a problem splits: per axis (h, w) the phases taken (min(stride, kernel): a phase
    past the kernel has no taps), the sub-kernel k = ceil(kernel / stride), the output tile
    m = alpha - k + 1, the tiles covering the output, and the padded input that the tiles of
    every phase read, stride * (tiles * m + k - 1)."""

    phases: tuple[int, int]
    sub_kernel: tuple[int, int]
    tile: tuple[int, int]
    tiles: tuple[int, int]
    padded: tuple[int, int]

    @property
    def phase_count(self) -> int:
        return self.phases[0] * self.phases[1]

    @property
    def tile_count(self) -> int:
        return self.tiles[0] * self.tiles[1]


def sub_kernel(p: ConvProblem) -> tuple[int, ...]:
    """The phases' common sub-kernel, ceil(kernel / stride) per axis."""
    return tuple(-(-k // s) for s, k in zip(p.stride, p.kernel))


@functools.lru_cache(maxsize=1024)
def plan(p: ConvProblem, alpha: int) -> Plan:
    """The plan of a problem the declaration supports (sub-kernel below alpha)."""
    phases = tuple(min(s, k) for s, k in zip(p.stride, p.kernel))
    sub = sub_kernel(p)
    tile = tuple(alpha - k + 1 for k in sub)
    tiles = tuple(-(-o // m) for o, m in zip(p.out_size, tile))
    padded = tuple(s * (t * m + k - 1) for s, t, m, k in zip(p.stride, tiles, tile, sub))
    return Plan(phases, sub, tile, tiles, padded)  # type: ignore[arg-type]


def _chunk_channels(p: ConvProblem, alpha: int, budget: int = CPU_CHUNK_BYTES) -> int:
    """Input channels per chunk of the input transform (all their phases), for chunk buffers
    of about `budget` bytes (winograd.py's rule, a channel counting once per phase)."""
    pl = plan(p, alpha)
    per_channel = alpha * alpha * pl.phase_count * p.n * pl.tile_count * p.itemsize
    return max(1, min(p.c, budget // per_channel))


def _padded(p: ConvProblem, x: Array, alpha: int) -> Array:
    """(N, C, *plan.padded): the input at its padding before, zeros around it. Rows and columns
    that no output reads (past the last window, s*(O - 1) + r, and past the last tile's reach)
    are left zero: they only feed the tiles' cropped outputs, but the transforms' rounding
    would carry them into the kept ones (an output whose window lies all in the padding came
    out 3e-5 off its bias where the tile's other rows held the input)."""
    xp = namespace(x)
    hp, wp = plan(p, alpha).padded
    (ph, pw) = p.padding
    (rh, rw) = (s * (o - 1) + k for s, o, k in zip(p.stride, p.out_size, p.kernel))
    out = xp.zeros((p.n, p.c, hp, wp), dtype=x.dtype, device=device(x))
    h, w = max(0, min(p.h, min(hp, rh) - ph)), max(0, min(p.w, min(wp, rw) - pw))
    out[:, :, ph : ph + h, pw : pw + w] = x[:, :, :h, :w]
    return out


def _tile_view(p: ConvProblem, padded: Array, alpha: int) -> Array:
    """(alpha, alpha, C, phases_h, phases_w, N, th, tw): element [u, v, c, a, b, n, i, j] is
    padded[n, c, s_h*(m_h*i + u) + a, s_w*(m_w*j + v) + b], tile (i, j) of phase (a, b) of the
    space-to-depth input. A strided view, no copy."""
    pl = plan(p, alpha)
    (sh, sw), (mh, mw) = p.stride, pl.tile
    esn, esc, esh, esw = array_strides(padded)
    shape = (alpha, alpha, p.c, *pl.phases, p.n, *pl.tiles)
    steps = (sh * esh, sw * esw, esc, esh, esw, esn, mh * sh * esh, mw * sw * esw)
    return strided(padded, shape, steps)


def input_transform(p: ConvProblem, x: Array, alpha: int) -> Array:
    """V = BT d B of every tile of every phase: (alpha^2, G, C/g * phases, P), P = N*th*tw,
    the channel axis ordered (channel, phase) so that each group's phases stay together. One
    gather and one Kronecker GEMM when one chunk holds every channel; else per chunk of
    channels the gather into a cache-sized buffer and one GEMM per axis (winograd.py's
    input_transform, on the phases' view)."""
    xp = namespace(x)
    pl = plan(p, alpha)
    a2, tiles, phases = alpha * alpha, p.n * pl.tile_count, pl.phase_count
    view = _tile_view(p, _padded(p, x, alpha), alpha)
    step = _chunk_channels(p, alpha, cache_bytes(x))
    if step >= p.c:
        bt = transforms_like(alpha, *pl.sub_kernel, x)[2]
        gathered = xp.reshape(view, (a2, p.c * phases * tiles))  # the one gather
        del view  # frees the padded input
        v = bt @ gathered
        return xp.reshape(v, (a2, p.groups, p.c // p.groups * phases, tiles))
    bt_h, bt_w = axis_transforms_like(alpha, *pl.sub_kernel, x)[2]
    v = xp.empty((a2, p.c * phases, tiles), dtype=x.dtype, device=device(x))
    # two flat chunk buffers, reused: a chunk's gathered tiles and their half-transformed copy
    size = alpha * alpha * step * phases * tiles
    gathered_flat = xp.empty((size,), dtype=x.dtype, device=device(x))
    half_flat = xp.empty((size,), dtype=x.dtype, device=device(x))
    for c0 in range(0, p.c, step):
        cc = min(step, p.c - c0)
        width = cc * phases * tiles
        gathered = xp.reshape(gathered_flat[: alpha * alpha * width],
                              (alpha, alpha, cc * phases, tiles))
        gathered = reshape_copy(view[:, :, c0 : c0 + cc], gathered.shape, gathered)
        half = xp.reshape(half_flat[: alpha * alpha * width], (alpha, alpha * width))
        half = matmul_into(bt_h, xp.reshape(gathered, (alpha, alpha * width)), half)
        matmul_into_part(bt_w, xp.reshape(half, (alpha, alpha, width)), v,
                         (slice(None), slice(c0 * phases, (c0 + cc) * phases), slice(None)),
                         (alpha, alpha, width))
    return xp.reshape(v, (a2, p.groups, p.c // p.groups * phases, tiles))


def phase_kernels(p: ConvProblem, w: Array, alpha: int) -> Array:
    """(K * C/g * phases, k_h * k_w): the kernel's phases w[:, :, a::s_h, b::s_w], each
    zero-padded to the common sub-kernel, in the input transform's (channel, phase) order."""
    xp = namespace(w)
    pl = plan(p, alpha)
    split = xp.permute_dims(_split_kernel(p, w, alpha), (0, 1, 3, 5, 2, 4))
    return xp.reshape(split, (p.k * (p.c // p.groups) * pl.phase_count,
                              math.prod(pl.sub_kernel)))  # the copy


def _split_kernel(p: ConvProblem, w: Array, alpha: int) -> Array:
    """(K, C/g, k_h, a, k_w, b): the kernel zero-padded to s * k per axis, a view of its taps
    s*i + a by phase, the phases past the kernel left out."""
    xp = namespace(w)
    pl = plan(p, alpha)
    (sh, sw), (kh, kw), cg = p.stride, pl.sub_kernel, p.c // p.groups
    wide = xp.zeros((p.k, cg, kh * sh, kw * sw), dtype=w.dtype, device=device(w))
    wide[:, :, : p.r, : p.s] = w
    return xp.reshape(wide, (p.k, cg, kh, sh, kw, sw))[:, :, :, : pl.phases[0], :,
                                                       : pl.phases[1]]


def filter_transform(p: ConvProblem, w: Array, alpha: int) -> Array:
    """U = G g GT of every phase's sub-kernel: (alpha^2, G, K/g, C/g * phases)."""
    xp = namespace(w)
    pl = plan(p, alpha)
    g = transforms_like(alpha, *pl.sub_kernel, w)[1]
    u = g @ phase_kernels(p, w, alpha).T  # (alpha^2, K * C/g * phases)
    return xp.reshape(u, (alpha * alpha, p.groups, p.k // p.groups,
                          p.c // p.groups * pl.phase_count))


def compiled_path(p: ConvProblem) -> bool:
    """Whether numpy arrays of `p` run through the compiled kernels (one group: the phases'
    (phase, channel) order would split groups)."""
    return p.groups == 1 and winograd_nhwc_kernels.modelled(p)


@functools.lru_cache(maxsize=1024)
def phase_problem(p: ConvProblem, alpha: int) -> ConvProblem:
    """The stride-1 problem of the phases, channels last: the space-to-depth input (N, OH + k_h
    - 1, OW + k_w - 1, phases * C), the sub-kernel, no padding (layout_kernels.phases writes
    the zeros), the same output."""
    pl = plan(p, alpha)
    (kh, kw) = pl.sub_kernel
    return dataclasses.replace(
        p, c=p.c * pl.phase_count, size=(p.out_h + kh - 1, p.out_w + kw - 1),
        kernel=(kh, kw), stride=(1, 1), padding=(0, 0), padding_end=None, layout="nhwc")


def phase_weights(p: ConvProblem, w: Array, alpha: int) -> Array:
    """The weights of phase_problem (K, phases * C, k_h, k_w), (phase, channel) order:
    [k, (a * pb + b) * C + c, i, j] = w[k, c, s_h*i + a, s_w*j + b], zero past the kernel."""
    xp = namespace(w)
    (kh, kw) = plan(p, alpha).sub_kernel
    split = xp.permute_dims(_split_kernel(p, w, alpha), (0, 3, 5, 1, 2, 4))  # (K, a, b, C, ...)
    return xp.reshape(split, (p.k, phase_problem(p, alpha).c, kh, kw))  # the copy


def phase_input(p: ConvProblem, x: Array, alpha: int) -> Array:
    """The space-to-depth input of phase_problem (N, OH + k_h - 1, OW + k_w - 1, phases * C),
    (phase, channel) order, from a channels-last x (N, C, H, W) with array operations: the
    zero-padded input channels last, then its phases' strided views side by side (the
    portable version of layout_kernels.phases)."""
    xp = namespace(x)
    q, pl = phase_problem(p, alpha), plan(p, alpha)
    (sh, sw), (pa, pb), (ph, pw) = p.stride, pl.phases, p.padding
    hp, wp = sh * q.size[0], sw * q.size[1]
    padded = xp.zeros((p.n, hp, wp, p.c), dtype=x.dtype, device=device(x))
    h, w = max(0, min(p.h, hp - ph)), max(0, min(p.w, wp - pw))
    padded[:, ph : ph + h, pw : pw + w, :] = xp.permute_dims(x, (0, 2, 3, 1))[:, :h, :w, :]
    return xp.concat([padded[:, a::sh, b::sw, :] for a in range(pa) for b in range(pb)],
                     axis=-1)


def _channels_last(p: ConvProblem, x: Array, w: Array, alpha: int,
                   prepared: Array | None) -> Array:
    """A channels-last problem by array operations: the phases' input (phase_input), then
    the channels-last Winograd pipeline (winograd_nhwc) of the stride-1 phase problem."""
    q = phase_problem(p, alpha)
    x2 = phase_input(p, x, alpha)
    xp = namespace(x2)
    w2 = phase_weights(p, w, alpha) if prepared is None else None
    return winograd_nhwc.winograd_nhwc(q, xp.permute_dims(x2, (0, 3, 1, 2)), w2, alpha,
                                       _nhwc_transforms(q, x2, alpha), prepared)


def _compiled_filters(p: ConvProblem, w: np.ndarray, alpha: int) -> np.ndarray:
    q = phase_problem(p, alpha)
    return winograd_nhwc_kernels.filter_transform(q, phase_weights(p, w, alpha), alpha)


def _runs_compiled(p: ConvProblem, x: Array, w: Array) -> bool:
    """Whether this call takes the compiled kernels (prepare and run ask alike)."""
    return compiled_path(p) and type(x) is np.ndarray and type(w) is np.ndarray


def _filters(p: ConvProblem, x: Array, w: Array, alpha: int) -> Array:
    """The filter transform in the order the call will use (what `prepare` does once)."""
    if _runs_compiled(p, x, w):
        return _compiled_filters(p, w, alpha)
    if p.channels_last:
        q = phase_problem(p, alpha)
        return winograd_nhwc.filter_transform(q, phase_weights(p, w, alpha), alpha,
                                              _nhwc_transforms(q, w, alpha)[1])
    return filter_transform(p, w, alpha)


def _compiled(p: ConvProblem, x: np.ndarray, u: np.ndarray, bias: np.ndarray | None,
              alpha: int) -> np.ndarray:
    """The phases' space-to-depth input channels last (layout_kernels.phases, after a blocked
    transpose of an NCHW input), then the compiled channels-last Winograd pipeline of the
    stride-1 phase problem, its result put back into NCHW for an NCHW problem."""
    q, pl, threads = phase_problem(p, alpha), plan(p, alpha), compiled.threads()
    xn = layout_kernels.channels_last(x, threads)
    x2 = layout_kernels.phases(xn, p.stride, pl.phases, p.padding, q.size, threads)
    del xn
    y = winograd_nhwc_kernels.convolution(q, x2.transpose(0, 3, 1, 2), u, bias, alpha)
    del x2
    if p.channels_last:
        return y
    return layout_kernels.channels_first(y.transpose(0, 2, 3, 1), threads)


def _compiled_workspace(p: ConvProblem, alpha: int) -> int:
    """The compiled path's peak above the call's start, less the output: making the filters
    (the zero-padded kernel beside its phases' copy, then that copy beside U and the filter
    kernel's buffers), then beside U throughout: the input's channels-last copy beside the
    space-to-depth input; that input, the bias's zeros and the stride-1 pipeline's stages
    (winograd_nhwc_kernels.pipeline_elements); the NHWC result beside the NCHW output."""
    q, workers = phase_problem(p, alpha), compiled.threads()
    (kh, kw) = plan(p, alpha).sub_kernel
    u = alpha * alpha * q.c * p.k
    wide, split = _weights_elements(p, alpha)
    making = max(wide + split, split + u + workers * p.k * kw * (kh + alpha))
    output = p.n * p.k * p.out_h * p.out_w
    x2 = p.n * q.h * q.w * q.c
    x_copy, back = (0, 0) if p.channels_last else (p.n * p.c * p.h * p.w, 2 * output)
    stages = (x_copy + x2, x2 + p.k + winograd_nhwc_kernels.pipeline_elements(q, alpha), back)
    return (max(making, u + max(stages)) - output) * p.itemsize


def _channels_last_workspace(p: ConvProblem, alpha: int) -> int:
    """The channels-last array path's peak above the call's start, less the output: the
    zero-padded input beside the phases' input, then beside that input the zero-padded
    kernel and its phases' copy, then that copy and the channels-last pipeline's own
    workspace (winograd_nhwc.workspace_bytes of the phase problem)."""
    q, (sh, sw) = phase_problem(p, alpha), p.stride
    x2 = p.n * q.h * q.w * q.c
    padded = p.n * sh * q.h * sw * q.w * p.c
    wide, split = _weights_elements(p, alpha)
    pipeline = winograd_nhwc.workspace_bytes(q, alpha) // p.itemsize
    return max(padded + x2, x2 + wide + split, x2 + split + pipeline) * p.itemsize


def _compiled_cost(p: ConvProblem, alpha: int) -> float:
    """The two blocked transposes, the space-to-depth copy (runs of C), the phase weights'
    copies and the stride-1 pipeline with its compiled filter transform
    (winograd_nhwc_kernels.cost_s)."""
    q, item = phase_problem(p, alpha), p.itemsize
    layout = 0.0 if p.channels_last else (cost.transpose_s(p.n * p.c * p.h * p.w, item)
                                          + cost.transpose_s(p.n * p.k * p.out_h * p.out_w,
                                                             item))
    phases = cost.copy_s(p.n * q.h * q.w * q.c, item, p.c)
    return (layout + _weights_cost(p, alpha) + phases + winograd_nhwc_kernels.cost_s(q, alpha)
            + cost.calls_s(8))


def _weights_elements(p: ConvProblem, alpha: int) -> tuple[int, int]:
    """phase_weights' two arrays: the zero-padded kernel and its phases' copy."""
    (sh, sw), (kh, kw) = p.stride, plan(p, alpha).sub_kernel
    return p.k * p.c * kh * sh * kw * sw, p.k * phase_problem(p, alpha).c * kh * kw


def _weights_cost(p: ConvProblem, alpha: int) -> float:
    """phase_weights: the zero-padded kernel written, its phases' copy (runs of k_w)."""
    wide, split = _weights_elements(p, alpha)
    return (cost.copy_s(wide, p.itemsize)
            + cost.copy_s(split, p.itemsize, plan(p, alpha).sub_kernel[1]))


def _channels_last_cost(p: ConvProblem, alpha: int) -> float:
    """The zero-padded input (the input copied in runs of a row), the phases' input (runs of
    C), the phase weights and the channels-last array pipeline (winograd_nhwc.cost_s)."""
    q, item, (sh, sw) = phase_problem(p, alpha), p.itemsize, p.stride
    padded = (cost.copy_s(p.n * sh * q.h * sw * q.w * p.c, item)
              + cost.copy_s(p.n * p.h * p.w * p.c, item, p.w * p.c))
    phases = cost.copy_s(p.n * q.h * q.w * q.c, item, p.c)
    return (padded + phases + _weights_cost(p, alpha) + winograd_nhwc.cost_s(q, alpha)
            + cost.calls_s(8))


def polyphase_winograd(p: ConvProblem, x: Array, w: Array, bias: Array | None, alpha: int,
                       prepared: Array | None = None) -> Array:
    """(N, K, OH, OW): all phases' products summed by the channel GEMMs, transformed back once,
    copied into NCHW and cropped to the output."""
    if _runs_compiled(p, x, w):
        u = _compiled_filters(p, w, alpha) if prepared is None else prepared
        return _compiled(p, x, u, bias, alpha)
    if p.channels_last:
        return add_bias(_channels_last(p, x, w, alpha, prepared), bias)
    xp = namespace(x, w)
    pl = plan(p, alpha)
    (mh, mw), (th, tw) = pl.tile, pl.tiles
    u = filter_transform(p, w, alpha) if prepared is None else prepared
    m = matmul(u, input_transform(p, x, alpha))  # (alpha^2, G, K/g, P)
    at = transforms_like(alpha, *pl.sub_kernel, x)[0]
    return add_bias(output_nchw(p, m, at, (mh, mw, th, tw)), bias)


def workspace_bytes(p: ConvProblem, alpha: int) -> int:
    """Peak memory above the call's start, less the output (what convbench measures): the
    transformed filters throughout, and at their making the zero-padded kernel and its phases'
    copy; then at each stage: the padded input, the transformed input and the gathered tiles
    (all at once beside their transform, or two chunk buffers); the transformed input and the
    products; the products and the output tiles; the output tiles and the output."""
    if compiled_path(p):
        return _compiled_workspace(p, alpha)
    if p.channels_last:
        return _channels_last_workspace(p, alpha)
    pl = plan(p, alpha)
    a2, tiles, phases = alpha * alpha, p.n * pl.tile_count, pl.phase_count
    (mh, mw), (kh, kw), cg = pl.tile, pl.sub_kernel, p.c // p.groups
    filters = a2 * p.k * cg * phases
    making = p.k * cg * (kh * kw * (p.stride[0] * p.stride[1] + phases))
    padded = p.n * p.c * math.prod(pl.padded)
    transformed = a2 * p.c * phases * tiles
    step = _chunk_channels(p, alpha)
    if step >= p.c:
        gather = max(padded + transformed, 2 * transformed)
    else:
        gather = padded + transformed + 2 * a2 * step * phases * tiles
    output = p.n * p.k * p.out_h * p.out_w
    tile_outputs = mh * mw * p.k * tiles
    stages = (gather, transformed + a2 * p.k * tiles, a2 * p.k * tiles + tile_outputs,
              tile_outputs + output)
    return (max(filters + max(stages) - output, making)) * p.itemsize


def filter_cost_s(p: ConvProblem, alpha: int) -> float:
    """The zero-padded kernel, its phases' copy (runs of one tap) and one GEMM with G (x) G."""
    pl = plan(p, alpha)
    (kh, kw), cg, item = pl.sub_kernel, p.c // p.groups, p.itemsize
    phased = p.k * cg * pl.phase_count * kh * kw
    wide = p.k * cg * kh * kw * p.stride[0] * p.stride[1]
    return (cost.copy_s(wide, item) + cost.copy_s(p.k * cg * p.r * p.s, item, p.s)
            + cost.copy_s(phased, item, 1)
            + cost.gemm_s(alpha * alpha, p.k * cg * pl.phase_count, kh * kw, item))


def input_cost_s(p: ConvProblem, alpha: int) -> float:
    """The padded copy, the gather of every phase's tiles (runs of a row of tiles) and its
    transform: one Kronecker GEMM, or per chunk of channels one GEMM per axis."""
    pl = plan(p, alpha)
    a2, tiles, phases, item = alpha * alpha, p.n * pl.tile_count, pl.phase_count, p.itemsize
    copies = (cost.copy_s(p.n * p.c * math.prod(pl.padded), item)
              + cost.copy_s(p.n * p.c * p.h * p.w, item, p.w)
              + cost.copy_s(a2 * p.c * phases * tiles, item, pl.tiles[1]))
    step = _chunk_channels(p, alpha)
    if step >= p.c:
        return copies + cost.gemm_s(a2, p.c * phases * tiles, a2, item) + cost.calls_s(4)
    width = step * phases * tiles
    per_chunk = (cost.gemm_s(alpha, alpha * width, alpha, item)
                 + cost.gemm_s(alpha, width, alpha, item, batch=alpha) + cost.calls_s(6))
    return copies + math.ceil(p.c / step) * per_chunk + cost.calls_s(4)


def cost_s(p: ConvProblem, alpha: int) -> float:
    """Filter transform, input transform, the alpha^2 channel GEMMs per group (K/g x C/g *
    phases) @ (C/g * phases x tiles), one output transform GEMM and the copy into NCHW (runs of
    a tile's row), cropped where the tiles reach past the output; the compiled path's own
    stages where it runs."""
    if compiled_path(p):
        return _compiled_cost(p, alpha)
    if p.channels_last:
        return _channels_last_cost(p, alpha)
    pl = plan(p, alpha)
    (mh, mw), (th, tw) = pl.tile, pl.tiles
    tiles, a2, item = p.n * th * tw, alpha * alpha, p.itemsize
    kg, cg = p.k // p.groups, p.c // p.groups * pl.phase_count
    channels = cost.gemm_s(kg, tiles, cg, item, batch=a2 * p.groups)
    outputs = output_cost_s(p, alpha, (mh, mw, th, tw))
    return (filter_cost_s(p, alpha) + input_cost_s(p, alpha) + channels + outputs
            + cost.calls_s(8))


def _checks(name: str, alpha: int) -> tuple:
    def stride_and_dilation(p: ConvProblem) -> str | None:
        if all(s == 1 for s in p.stride):
            return "stride 1 has one phase: that is plain Winograd (winograd_f*)"
        if any(d != 1 for d in p.dilation):
            return f"dilation 1 only, got dilation {p.dilation}"
        return None

    def channels_last_groups(p: ConvProblem) -> str | None:
        if p.channels_last and p.groups > 1:
            return (f"channels-last memory with one group only, got groups={p.groups}: the "
                    "phases' (phase, channel) order would split the groups")
        return None

    def sub_kernel_fits(p: ConvProblem) -> str | None:
        sub = sub_kernel(p)
        shown = "x".join(map(str, sub))
        if sub == (1, 1):  # F(alpha, 1) multiplies as often as a plain 1x1 GEMM, in more steps
            return (f"windows that do not overlap (kernel {'x'.join(map(str, p.kernel))} at "
                    f"stride {'x'.join(map(str, p.stride))}): the phases' 1x1 sub-kernels "
                    "leave Winograd no multiplies to save")
        if all((alpha - k + 1, k) in MATRICES for k in sub):
            return None
        return (f"{name} takes {alpha}x{alpha} tiles: the phases' sub-kernel {shown} "
                f"(kernel / stride, rounded up) must be at most {alpha - 1} per axis")

    return (stride_and_dilation, channels_last_groups, sub_kernel_fits)


def _register(name: str, alpha: int) -> None:
    register(
        "conv2d", name, backends=ARRAY_API_BACKENDS, checks=_checks(name, alpha),
        per_side=True, layouts=LAYOUTS,
        workspace_bytes=functools.partial(workspace_bytes, alpha=alpha),
        cost_s=functools.partial(cost_s, alpha=alpha),
        prepare=lambda p, x, w, bias: _filters(p, x, w, alpha),
        tolerance_floor_eps=TOLERANCE_FLOOR_EPS[alpha], error_spreads=True,
        summary=f"polyphase Winograd, {alpha}x{alpha} tiles: a strided layer as one stride-1 "
        "Winograd convolution of the input's phases (3x3 at stride 2: F"
        f"({alpha - 1},2), {4 * alpha**2 / (alpha - 1) ** 2:.2f} multiplies per output and "
        "channel against 9)",
    )(functools.partial(polyphase_winograd, alpha=alpha))


# As winograd.py's floors: six times or more the largest error beyond sqrt(L), in eps, measured
# against float64 over strides 2-4 (and 2x1, 1x2), kernels 1x3 to 7x7, C 1-64 dense and
# depthwise, two seeds each, and ResNet-like layers: at most 0.8, 30 and 116 eps for alpha 4, 6
# and 8. The worst are sub-kernels of 1 on one axis (F(alpha, 1), whose points reach +-2 and
# +-1/2 for alpha 6 and 8) on depthwise layers; square sub-kernels of 2-4 stayed at 15 and 101.
TOLERANCE_FLOOR_EPS: dict[int, float] = {4: 32.0, 6: 192.0, 8: 768.0}

for _name, _alpha in FAMILY.items():
    _register(_name, _alpha)
