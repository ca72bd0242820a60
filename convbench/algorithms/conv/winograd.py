"""Winograd minimal filtering F(m x m, r x r) (Lavin & Gray 2016), the F(m, r) family.

Per tile: Y = AT [ (G g GT) * (BT d B) ] A, with output tile m x m from input tile alpha x alpha,
alpha = m + r - 1. The input transform is applied per axis (BT_h on the tile's rows, then BT_w
on its columns: two GEMMs) on chunks of channels whose gathered tiles stay in cache; the filter
and output transforms are one GEMM each with the Kronecker product (AT (x) AT acts on a
flattened tile). The elementwise products over channels become alpha^2 batched GEMMs
(K x C) @ (C x tiles).

Each algorithm fixes the input tile alpha; a kernel axis of size k <= r uses F(alpha - k + 1, k),
so non-square kernels (3x1, 1x7, 5x3) work through the 1-D transforms per axis.
Stride 1 and dilation 1 only. The matrices are pinned in winograd_matrices.py. Channels-last
input (2-D) takes winograd_nhwc's arrangement of the same transforms, with no layout change;
rank 3 takes winograd_nd's.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from convbench.algorithms import cost
from convbench.algorithms.windows import add_bias
from convbench.algorithms.conv import winograd_nd, winograd_nhwc, winograd_nhwc_kernels
from convbench.algorithms.conv.winograd_nhwc import tiles as _tiles  # either layout's
from convbench.algorithms.conv.winograd_nd import matrices
from convbench.backends import ARRAY_API_BACKENDS
from convbench.problems import LAYOUTS, ConvProblem
from convbench.algorithms.registry import register
from convbench.backends.xp import (
    CPU_CHUNK_BYTES,
    Array,
    array_strides,
    cache_bytes,
    constant,
    contiguous,
    device,
    device_key,
    matmul,
    matmul_into,
    matmul_into_part,
    namespace,
    reshape_copy,
    strided,
)

# (m, r) of each registered algorithm: 3x3 at three tile sizes, and kernels 2 to 7.
FAMILY: dict[str, tuple[int, int]] = {
    "winograd_f2x3": (2, 3), "winograd_f4x3": (4, 3), "winograd_f6x3": (6, 3),
    "winograd_f3x2": (3, 2), "winograd_f3x4": (3, 4), "winograd_f2x5": (2, 5),
    "winograd_f4x5": (4, 5), "winograd_f3x6": (3, 6), "winograd_f2x7": (2, 7),
}


@functools.cache
def axis_transforms(alpha: int, r: int, s: int, dtype: str
                    ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray],
                               tuple[np.ndarray, np.ndarray]]:
    """The 1-D transforms of each axis for an r x s kernel, ((AT_h, AT_w), (G_h, G_w),
    (BT_h, BT_w))."""
    return tuple(zip(matrices(alpha - r + 1, r, dtype), matrices(alpha - s + 1, s, dtype)))


@functools.cache
def kron_transforms(alpha: int, r: int, s: int, dtype: str
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two-sided transforms for an r x s kernel as single matrices acting on flattened tiles:
    AT (mh*mw, alpha^2), G (alpha^2, r*s), BT (alpha^2, alpha^2), the Kronecker products of
    axis_transforms."""
    return tuple(np.kron(h, w) for h, w in axis_transforms(alpha, r, s, dtype))


_ON_DEVICE: dict[tuple, Any] = {}


def _on_device(make: Callable[..., Any], alpha: int, r: int, s: int, like: Array) -> Any:
    """make(alpha, r, s, "float64") (nested tuples of matrices) in `like`'s library, dtype and
    device, made once per device."""
    key = (make, alpha, r, s, like.dtype, type(like), device_key(like))
    if key not in _ON_DEVICE:
        def convert(v: Any) -> Any:
            return tuple(map(convert, v)) if isinstance(v, tuple) else constant(v, like)

        _ON_DEVICE[key] = convert(make(alpha, r, s, "float64"))
    return _ON_DEVICE[key]


def transforms_like(alpha: int, r: int, s: int, like: Array) -> tuple[Array, Array, Array]:
    """kron_transforms on `like`'s library, dtype and device."""
    return _on_device(kron_transforms, alpha, r, s, like)


def axis_transforms_like(alpha: int, r: int, s: int, like: Array) -> tuple:
    """axis_transforms on `like`'s library, dtype and device."""
    return _on_device(axis_transforms, alpha, r, s, like)


# Input tiles are gathered and transformed a few channels at a time, so that the gathered tiles
# and their half-transformed copy (the two chunk buffers) stay in cache between the copy and the
# two transform GEMMs: about cache_bytes(x) per chunk buffer (xp.CPU_CHUNK_BYTES on a CPU; on a
# GPU, where each chunk costs kernel launches, one chunk for most problems).
def _chunk_channels(p: ConvProblem, alpha: int, budget: int = CPU_CHUNK_BYTES) -> int:
    """Input channels per chunk of the input transform, for chunk buffers of `budget` bytes."""
    _, _, th, tw = _tiles(p, alpha)
    per_channel = alpha * alpha * p.n * th * tw * p.itemsize
    return max(1, min(p.c, budget // per_channel))


def _padded(p: ConvProblem, x: Array, alpha: int) -> Array:
    """The input zero-padded so that the tiles cover it: (N, C, th*mh + r-1, tw*mw + s-1)."""
    xp = namespace(x)
    mh, mw, th, tw = _tiles(p, alpha)
    (ph, pw) = p.padding
    shape = (p.n, p.c, th * mh + p.r - 1, tw * mw + p.s - 1)
    padded = xp.zeros(shape, dtype=x.dtype, device=device(x))
    padded[:, :, ph : ph + p.h, pw : pw + p.w] = x  # the tiles cover at least the padded input
    return padded


def _tile_view(p: ConvProblem, padded: Array, alpha: int) -> Array:
    """(alpha, alpha, C, N, th, tw) overlapping input tiles: a strided view of `padded`."""
    mh, mw, th, tw = _tiles(p, alpha)
    sn, sc, sh, sw = array_strides(padded)
    return strided(padded, (alpha, alpha, p.c, p.n, th, tw), (sh, sw, sc, sn, mh * sh, mw * sw))


def input_transform(p: ConvProblem, x: Array, alpha: int) -> Array:
    """V = BT d B of every input tile: (alpha^2, G, C/g, P), P = N*th*tw tiles, alpha^2 in the
    order (row, column) of the tile. When one chunk holds every channel (small problems, and
    GPUs), the tiles are gathered at once and transformed by one GEMM with the Kronecker
    product: the fewest operations. Otherwise chunk by chunk of channels: the tiles of a chunk
    are gathered into a buffer (the one copy), then transformed per axis, rows (BT_h, one GEMM)
    and columns (BT_w, batched over rows) straight into V."""
    xp = namespace(x)
    _, _, th, tw = _tiles(p, alpha)
    tiles, a2 = p.n * th * tw, alpha * alpha
    tile_view = _tile_view(p, _padded(p, x, alpha), alpha)
    step = _chunk_channels(p, alpha, cache_bytes(x))
    if step >= p.c:
        bt = transforms_like(alpha, p.r, p.s, x)[2]
        gathered = xp.reshape(tile_view, (a2, p.c * tiles))  # the one copy
        del tile_view  # frees the padded input
        v = bt @ gathered
        return xp.reshape(v, (a2, p.groups, p.c // p.groups, tiles))
    bt_h, bt_w = axis_transforms_like(alpha, p.r, p.s, x)[2]
    v = xp.empty((a2, p.c, tiles), dtype=x.dtype, device=device(x))
    gathered = xp.empty((alpha, alpha, step, tiles), dtype=x.dtype, device=device(x))
    half = xp.empty((alpha, alpha, step * tiles), dtype=x.dtype, device=device(x))
    for c0 in range(0, p.c, step):
        cc = min(step, p.c - c0)
        if cc != step:  # the last chunk: buffers of its size, in place of the others
            del gathered, half
            gathered = xp.empty((alpha, alpha, cc, tiles), dtype=x.dtype, device=device(x))
            half = xp.empty((alpha, alpha, cc * tiles), dtype=x.dtype, device=device(x))
        gathered = reshape_copy(tile_view[:, :, c0 : c0 + cc, ...], (alpha, alpha, cc, tiles),
                                gathered)
        half = matmul_into(bt_h, xp.reshape(gathered, (alpha, alpha * cc * tiles)),
                           xp.reshape(half, (alpha, alpha * cc * tiles)))
        matmul_into_part(bt_w, xp.reshape(half, (alpha, alpha, cc * tiles)), v,
                         (slice(None), slice(c0, c0 + cc), slice(None)),
                         (alpha, alpha, cc * tiles))
    return xp.reshape(v, (a2, p.groups, p.c // p.groups, tiles))


def filter_transform(p: ConvProblem, w: Array, alpha: int) -> Array:
    """U = G g GT for every (k, c): (alpha^2, groups, K/g, C/g)."""
    xp = namespace(w)
    _, g, _ = transforms_like(alpha, p.r, p.s, w)
    u = g @ xp.reshape(w, (p.k * (p.c // p.groups), p.r * p.s)).T  # (alpha^2, K*C/g)
    return xp.reshape(u, (alpha * alpha, p.groups, p.k // p.groups, p.c // p.groups))


def winograd(p: ConvProblem, x: Array, w: Array, bias: Array | None,
             alpha: int, prepared: Array | None = None) -> Array:
    if p.rank != 2:
        return add_bias(winograd_nd.winograd_nd(p, x, w, alpha, prepared), bias)
    if winograd_nhwc_kernels.applies(p, x, w):  # compiled, channels last inside
        u = _filters(p, w, alpha) if prepared is None else prepared
        return winograd_nhwc_kernels.convolution(p, x, u, bias, alpha)
    if p.channels_last:
        return add_bias(winograd_nhwc.winograd_nhwc(
            p, x, w, alpha, _nhwc_transforms(p, x, alpha), prepared), bias)
    xp = namespace(x, w)
    mh, mw, th, tw = _tiles(p, alpha)
    at, _, _ = transforms_like(alpha, p.r, p.s, x)
    u = filter_transform(p, w, alpha) if prepared is None else prepared
    v = input_transform(p, x, alpha)  # (alpha^2, G, C/g, P), P = N*th*tw
    m = matmul(u, v)  # (alpha^2, G, K/g, C/g) @ (alpha^2, G, C/g, P) -> (alpha^2, G, K/g, P)
    del v
    return add_bias(output_nchw(p, m, at, (mh, mw, th, tw)), bias)


def output_nchw(p: ConvProblem, m: Array, at: Array, tiling: tuple[int, int, int, int]
                ) -> Array:
    """Y = AT M A of every tile's products m (alpha^2, G, K/g, P), as one GEMM, copied into
    NCHW and cropped where the edge tiles reach past the output. `tiling`: (m_h, m_w, tiles_h,
    tiles_w). Shared with polyphase Winograd, whose products have the same arrangement."""
    xp = namespace(m)
    mh, mw, th, tw = tiling
    y = at @ xp.reshape(m, (at.shape[1], -1))  # (mh*mw, K*P)
    del m
    y = xp.reshape(y, (mh, mw, p.k, p.n, th, tw))
    y = xp.permute_dims(y, (3, 2, 4, 0, 5, 1))  # (N, K, th, mh, tw, mw)
    y = xp.reshape(y, (p.n, p.k, th * mh, tw * mw))  # the copy into NCHW
    if (th * mh, tw * mw) != (p.out_h, p.out_w):  # edge tiles reach past the output: crop
        y = contiguous(y[:, :, : p.out_h, : p.out_w])
    return y


def output_cost_s(p: ConvProblem, alpha: int, tiling: tuple[int, int, int, int]) -> float:
    """output_nchw's cost: one GEMM, the copy into NCHW (runs of a tile's row), the crop."""
    mh, mw, th, tw = tiling
    outputs = (cost.gemm_s(mh * mw, p.k * p.n * th * tw, alpha * alpha, p.itemsize)
               + cost.copy_s(p.n * p.k * th * mh * tw * mw, p.itemsize, mw))
    if (th * mh, tw * mw) != (p.out_h, p.out_w):
        outputs += cost.copy_s(p.n * p.k * p.out_h * p.out_w, p.itemsize, p.out_w)
    return outputs


def _nhwc_transforms(p: ConvProblem, like: Array, alpha: int) -> tuple:
    """(AT (x) AT, G (x) G, (BT_h, BT_w)) on `like`'s library, dtype and device: what the
    channels-last pipeline (winograd_nhwc) applies."""
    at, g, _ = transforms_like(alpha, p.r, p.s, like)
    return at, g, axis_transforms_like(alpha, p.r, p.s, like)[2]


def workspace_bytes(p: ConvProblem, alpha: int) -> int:
    """Peak memory above the call's start, less the output (what convbench measures): the
    transformed filters throughout, plus at each stage: the padded input, the gathered tiles
    (all of them, or a chunk's) and the transformed input (with chunks: and the chunk's half-
    transformed copy); the transformed input and the products; the products and the output
    tiles; or the output tiles and the output. The chunks are those of a CPU (numpy's and
    torch's CPU tensors, what this model is checked against). Rank 3: winograd_nd's."""
    if p.rank != 2:
        return winograd_nd.workspace_elements(p, alpha) * p.itemsize
    if winograd_nhwc_kernels.modelled(p):
        return winograd_nhwc_kernels.workspace_bytes(p, alpha)
    if p.channels_last:
        return winograd_nhwc.workspace_bytes(p, alpha)
    mh, mw, th, tw = _tiles(p, alpha)
    tiles, a2 = p.n * th * tw, alpha * alpha
    padded = p.n * p.c * (th * mh + p.r - 1) * (tw * mw + p.s - 1)
    filters = a2 * p.k * (p.c // p.groups)
    output = p.n * p.k * p.out_h * p.out_w
    step = _chunk_channels(p, alpha)
    if step >= p.c:  # all tiles at once, then their Kronecker transform beside them
        gather = max(padded + a2 * p.c * tiles, 2 * a2 * p.c * tiles)
    else:
        gather = padded + a2 * p.c * tiles + 2 * a2 * step * tiles
    stages = (
        gather,
        a2 * p.c * tiles + a2 * p.k * tiles,
        a2 * p.k * tiles + mh * mw * p.k * tiles,
        mh * mw * p.k * tiles + output,
    )
    return (filters + max(stages) - output) * p.itemsize


def input_cost_s(p: ConvProblem, alpha: int) -> float:
    """The padded copy, the tiles gathered (alpha^2 * C * tiles items, runs of a row of tiles)
    and transformed: one Kronecker GEMM, or per chunk of channels one GEMM per axis."""
    mh, mw, th, tw = _tiles(p, alpha)
    tiles, a2, item = p.n * th * tw, alpha * alpha, p.itemsize
    padded = p.n * p.c * (th * mh + p.r - 1) * (tw * mw + p.s - 1)
    copies = (cost.copy_s(padded, item) + cost.copy_s(p.n * p.c * p.h * p.w, item, p.w)
              + cost.copy_s(a2 * p.c * tiles, item, tw))
    step = _chunk_channels(p, alpha)
    if step >= p.c:
        return copies + cost.gemm_s(a2, p.c * tiles, a2, item) + cost.calls_s(4)
    per_chunk = (cost.gemm_s(alpha, alpha * step * tiles, alpha, item)
                 + cost.gemm_s(alpha, step * tiles, alpha, item, batch=alpha) + cost.calls_s(4))
    return copies + math.ceil(p.c / step) * per_chunk + cost.calls_s(4)


def cost_s(p: ConvProblem, alpha: int) -> float:
    """Filter transform (one GEMM), input transform (input_cost_s), alpha^2 channel GEMMs per
    group (K/g x C/g) @ (C/g x tiles), the output transform (one GEMM) and the copy into NCHW
    (runs of a tile's row), cropped where the tiles reach past the output. Rank 3:
    winograd_nd's."""
    if p.rank != 2:
        return winograd_nd.cost_s(p, alpha)
    if winograd_nhwc_kernels.modelled(p):
        return winograd_nhwc_kernels.cost_s(p, alpha)
    if p.channels_last:
        return winograd_nhwc.cost_s(p, alpha)
    mh, mw, th, tw = _tiles(p, alpha)
    tiles, a2, kg, cg = p.n * th * tw, alpha * alpha, p.k // p.groups, p.c // p.groups
    filters = cost.gemm_s(a2, p.k * cg, p.r * p.s, p.itemsize)
    channels = cost.gemm_s(kg, tiles, cg, p.itemsize, batch=a2 * p.groups)
    outputs = output_cost_s(p, alpha, (mh, mw, th, tw))
    return filters + input_cost_s(p, alpha) + channels + outputs + cost.calls_s(8)


def _filters(p: ConvProblem, w: Array, alpha: int) -> Array:
    """The filter transform of either rank (what `prepare` does once for inference)."""
    if p.rank != 2:
        return winograd_nd.filter_transform(p, w, alpha)
    kernels = winograd_nhwc_kernels.applies(p, w, w)
    if kernels and p.groups == 1:
        return winograd_nhwc_kernels.filter_transform(p, w, alpha)
    if p.channels_last or kernels:  # the kernels' (C, K) order
        return winograd_nhwc.filter_transform(p, w, alpha, transforms_like(alpha, p.r, p.s, w)[1])
    return filter_transform(p, w, alpha)


def _checks(name: str, m: int, r: int) -> tuple:
    def stride_and_dilation(p: ConvProblem) -> str | None:
        if any(s != 1 for s in p.stride):
            return f"stride 1 only, got stride {p.stride}"
        if any(d != 1 for d in p.dilation):
            return f"dilation 1 only, got dilation {p.dilation}"
        return None

    def kernel(p: ConvProblem) -> str | None:
        if max(p.kernel) != r:
            shown = "x".join(map(str, p.kernel))
            return f"{name} is F({m},{r}): the kernel's longer side must be {r}, got {shown}"
        return None

    def layout(p: ConvProblem) -> str | None:
        if p.channels_last and p.rank != 2:
            return (f"{name} takes channels-last memory in 2-D only (winograd_nhwc), not "
                    f"{p.rank}-D")
        return None

    return (stride_and_dilation, kernel, layout)


def _register(name: str, m: int, r: int) -> None:
    alpha = m + r - 1
    register(
        "conv2d", name, backends=ARRAY_API_BACKENDS, checks=_checks(name, m, r), ranks=(2, 3),
        layouts=LAYOUTS, workspace_bytes=functools.partial(workspace_bytes, alpha=alpha),
        cost_s=functools.partial(cost_s, alpha=alpha),
        prepare=lambda p, x, w, bias: _filters(p, w, alpha),
        tolerance_floor_eps=TOLERANCE_FLOOR_EPS[alpha], error_spreads=True,
        rank_floor_eps={3: TOLERANCE_FLOOR_EPS_3D[alpha]},
        summary=f"Winograd F({m}x{m},{r}x{r}): {alpha}x{alpha} input tiles, "
        f"{(m * r) ** 2 / alpha**2:.2f}x fewer multiplies",
    )(functools.partial(winograd, alpha=alpha))


# Error grows with the tile (Lavin & Gray; Barabasz et al.), and a tile's rounding reaches every
# output of the tile, so it is measured against the output's largest magnitude (error_spreads).
# The floor per alpha, in units of eps, is six times or more the largest error beyond sqrt(L)
# measured over the test grid, the quick suite and ResNet-like layers (at most 0, 14 and 65 eps
# for alpha = 4, 6, 8; worst on depthwise and few-channel layers).
TOLERANCE_FLOOR_EPS: dict[int, float] = {4: 32.0, 6: 128.0, 8: 384.0}
# 3-D tiles apply three axes' transforms: the worst error beyond sqrt(L) measured on C3D-, 3D
# U-Net- and depthwise-like layers (C 3-256, 3x3x3, fp32) was at most 0, 12 and 248 eps for
# alpha = 4, 6, 8; the floors keep six times that or more.
TOLERANCE_FLOOR_EPS_3D: dict[int, float] = {4: 32.0, 6: 128.0, 8: 1536.0}

for _name, (_m, _r) in FAMILY.items():
    _register(_name, _m, _r)
