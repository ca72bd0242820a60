"""Winograd F(m x m, r x r) on channels-last memory: NHWC in, NHWC out, no layout change.

The same transforms as winograd.py (BT, G, AT from winograd_matrices.py), arranged so that
channels are the innermost axis at every stage:

- input: the tiles of a block of tile rows are gathered into (alpha, alpha, tiles, C), a copy
  of contiguous runs of C values (in NCHW the runs are a tile's row, 4-8 values), then
  transformed per axis (BT_h, one GEMM; BT_w, batched over rows) into V (alpha^2, P, C);
- channel GEMMs: alpha^2 products (P x C) @ (C x K), the operands' rows contiguous;
- output: per block of tile rows, AT (x) AT on the products (one GEMM), and the tiles written
  straight into the NHWC output, runs of K values.

Blocks are sized to stay in a core's L2 (xp.cache_bytes) between the gather and the two
transform GEMMs, and between the output transform and its scatter. 2-D only, stride 1,
dilation 1; groups run as a batch of per-group channel GEMMs.
"""

from __future__ import annotations

import math

from convbench.algorithms import cost
from convbench.backends.xp import (
    CPU_CHUNK_BYTES,
    Array,
    array_strides,
    cache_bytes,
    contiguous,
    device,
    matmul,
    matmul_into,
    matmul_into_part,
    namespace,
    reshape_copy,
    strided,
)
from convbench.problems import ConvProblem

# A block: images [n0, n1) and their tile rows [i0, i1) (several whole images, or one image's
# run of tile rows), so that a block's tiles are one contiguous range of the P = (n, i, j) axis.
Block = tuple[int, int, int, int]


def tiles(p: ConvProblem, alpha: int) -> tuple[int, int, int, int]:
    """(m_h, m_w, tiles_h, tiles_w): output tile sizes and how many tiles cover the output."""
    mh, mw = alpha - p.r + 1, alpha - p.s + 1
    return mh, mw, math.ceil(p.out_h / mh), math.ceil(p.out_w / mw)


def blocks(p: ConvProblem, alpha: int, channels: int, budget: int = CPU_CHUNK_BYTES
           ) -> list[Block]:
    """Blocks of tile rows whose alpha^2 x tiles x `channels` buffer fits `budget` bytes."""
    _, _, th, tw = tiles(p, alpha)
    row_bytes = alpha * alpha * tw * channels * p.itemsize
    rows = max(1, budget // row_bytes)
    if rows >= th:  # whole images per block
        images = rows // th
        return [(n, min(n + images, p.n), 0, th) for n in range(0, p.n, images)]
    return [(n, n + 1, i, min(i + rows, th)) for n in range(p.n) for i in range(0, th, rows)]


def _block_tiles(p: ConvProblem, alpha: int, block: Block) -> tuple[int, int]:
    """(first tile, tile count) of `block` on the P = (n, i, j) axis."""
    _, _, th, tw = tiles(p, alpha)
    n0, n1, i0, i1 = block
    return (n0 * th + i0) * tw, (n1 - n0) * (i1 - i0) * tw


def filter_transform(p: ConvProblem, w: Array, alpha: int, g_kron: Array) -> Array:
    """U = G g GT for every (c, k), as the right-hand operands of the channel GEMMs:
    (alpha^2, groups, C/g, K/g). The weights are put in (C, K) order first, a copy of r*s
    values per pair, so that the transform (alpha^2 per pair) is written once, in place."""
    xp = namespace(w)
    kg, cg = p.k // p.groups, p.c // p.groups
    grouped = xp.reshape(w, (p.groups, kg, cg, p.r * p.s))
    ordered = contiguous(xp.permute_dims(grouped, (0, 2, 1, 3)))  # (G, C/g, K/g, r*s)
    u = g_kron @ xp.reshape(ordered, (p.k * cg, p.r * p.s)).T  # (alpha^2, G*C/g*K/g)
    return xp.reshape(u, (alpha * alpha, p.groups, cg, kg))


def padded(p: ConvProblem, x: Array, alpha: int) -> Array:
    """x (N, C, H, W) in channels-last memory, zero-padded so that the tiles cover it:
    (N, th*mh + r-1, tw*mw + s-1, C), contiguous."""
    xp = namespace(x)
    mh, mw, th, tw = tiles(p, alpha)
    (ph, pw) = p.padding
    out = xp.zeros((p.n, th * mh + p.r - 1, tw * mw + p.s - 1, p.c), dtype=x.dtype,
                   device=device(x))
    out[:, ph : ph + p.h, pw : pw + p.w, :] = xp.permute_dims(x, (0, 2, 3, 1))  # runs of C
    return out


def _tile_view(p: ConvProblem, x_pad: Array, alpha: int) -> Array:
    """(alpha, alpha, N, th, tw, C) overlapping input tiles: a strided view of the padded input."""
    mh, mw, th, tw = tiles(p, alpha)
    sn, sh, sw, sc = array_strides(x_pad)
    return strided(x_pad, (alpha, alpha, p.n, th, tw, p.c),
                   (sh, sw, sn, mh * sh, mw * sw, sc))


def input_transform(p: ConvProblem, x: Array, alpha: int, bt: tuple[Array, Array]) -> Array:
    """V = BT d B of every input tile, (alpha^2, P, C) with P = N*th*tw tiles in (n, i, j)
    order: per block, the tiles gathered (the one copy, runs of C), BT_h on their rows (one
    GEMM), then BT_w on their columns (batched over rows) straight into V."""
    xp = namespace(x)
    bt_h, bt_w = bt
    _, _, th, tw = tiles(p, alpha)
    view = _tile_view(p, padded(p, x, alpha), alpha)
    v = xp.empty((alpha, alpha, p.n * th * tw, p.c), dtype=x.dtype, device=device(x))
    gathered = half = None
    for block in blocks(p, alpha, p.c, cache_bytes(x)):
        n0, n1, i0, i1 = block
        first, count = _block_tiles(p, alpha, block)
        flat = (alpha, alpha * count * p.c)
        if gathered is None or gathered.shape[2] != count:  # the last block may be smaller
            gathered = half = None
            gathered = xp.empty((alpha, alpha, count, p.c), dtype=x.dtype, device=device(x))
            half = xp.empty(flat, dtype=x.dtype, device=device(x))
        gathered = reshape_copy(view[:, :, n0:n1, i0:i1, ...], gathered.shape, gathered)
        half = matmul_into(bt_h, xp.reshape(gathered, flat), half)  # (alpha_h, alpha*count*C)
        matmul_into_part(bt_w, xp.reshape(half, (alpha, alpha, count * p.c)), v,
                         (slice(None), slice(None), slice(first, first + count)),
                         (alpha, alpha, count * p.c))
    return xp.reshape(v, (alpha * alpha, p.n * th * tw, p.c))


def channel_gemms(p: ConvProblem, v: Array, u: Array) -> Array:
    """M = V U: alpha^2 GEMMs (P x C/g) @ (C/g x K/g) per group, (alpha^2, P, K)."""
    xp = namespace(v, u)
    a2, tiles_, _ = v.shape
    if p.groups == 1:
        return matmul(v, u[:, 0])  # (alpha^2, P, C) @ (alpha^2, C, K)
    g, cg, kg = p.groups, p.c // p.groups, p.k // p.groups
    grouped = xp.permute_dims(xp.reshape(v, (a2, tiles_, g, cg)), (0, 2, 1, 3))
    m = matmul(grouped, u)  # (alpha^2, G, P, K/g)
    return xp.reshape(contiguous(xp.permute_dims(m, (0, 2, 1, 3))), (a2, tiles_, p.k))


def output_transform(p: ConvProblem, m: Array, alpha: int, at: Array) -> Array:
    """Y = AT M A of every tile, written into the NHWC output (N, OH, OW, K): per block, one
    GEMM with AT (x) AT on the block's products, then one copy of its tiles (runs of K) into
    the output, or into a tile-aligned buffer cropped at the end when tiles reach past it."""
    xp = namespace(m)
    mh, mw, th, tw = tiles(p, alpha)
    aligned = (th * mh, tw * mw) == (p.out_h, p.out_w)
    y = xp.empty((p.n, th * mh, tw * mw, p.k), dtype=m.dtype, device=device(m))
    tile_out = xp.reshape(y, (p.n, th, mh, tw, mw, p.k))  # a view: y is tile-aligned
    flat = xp.reshape(m, (alpha * alpha, -1))  # (alpha^2, P*K)
    for block in blocks(p, alpha, p.k, cache_bytes(m)):
        n0, n1, i0, i1 = block
        first, count = _block_tiles(p, alpha, block)
        part = at @ flat[:, first * p.k : (first + count) * p.k]  # (mh*mw, count*K)
        part = xp.reshape(part, (mh, mw, n1 - n0, i1 - i0, tw, p.k))
        tile_out[n0:n1, i0:i1, ...] = xp.permute_dims(part, (2, 3, 0, 4, 1, 5))
    if not aligned:
        y = contiguous(y[:, : p.out_h, : p.out_w, :])
    return y


def winograd_nhwc(p: ConvProblem, x: Array, w: Array, alpha: int,
                  transforms: tuple, prepared: Array | None = None) -> Array:
    """The convolution (N, K, OH, OW) in channels-last memory; `transforms` are
    (AT (x) AT, G (x) G, (BT_h, BT_w)) in x's library and dtype."""
    xp = namespace(x, w)
    at, g_kron, bt = transforms
    u = filter_transform(p, w, alpha, g_kron) if prepared is None else prepared
    v = input_transform(p, x, alpha, bt)  # (alpha^2, P, C)
    m = channel_gemms(p, v, u)  # (alpha^2, P, K)
    del v
    y = output_transform(p, m, alpha, at)  # (N, OH, OW, K)
    return xp.permute_dims(y, (0, 3, 1, 2))


def workspace_bytes(p: ConvProblem, alpha: int) -> int:
    """Peak memory above the call's start, less the output: the transformed filters
    throughout, plus at each stage: the weights in (C, K) order; the padded input, V and a
    block's two buffers; V and the products (and with groups, their channels-first copy); the
    products, the tile-aligned output and the blocks' transformed tiles (two blocks' where
    there are several); the products, the tile-aligned output and its cropped copy when tiles
    reach past it."""
    mh, mw, th, tw = tiles(p, alpha)
    tiles_, a2 = p.n * th * tw, alpha * alpha
    filters = a2 * p.k * (p.c // p.groups)
    output = p.n * p.k * p.out_h * p.out_w
    aligned_out = p.n * p.k * th * mh * tw * mw
    x_pad = p.n * (th * mh + p.r - 1) * (tw * mw + p.s - 1) * p.c
    in_block = max(_block_tiles(p, alpha, b)[1] for b in blocks(p, alpha, p.c))
    out_blocks = blocks(p, alpha, p.k)
    out_block = max(_block_tiles(p, alpha, b)[1] for b in out_blocks)
    products = a2 * tiles_ * p.k
    # a block's transformed tiles: the next block's are made while the last one's are held
    parts = (2 if len(out_blocks) > 1 else 1) * mh * mw * out_block * p.k
    stages = (
        p.k * (p.c // p.groups) * p.r * p.s,
        x_pad + a2 * tiles_ * p.c + 2 * a2 * in_block * p.c,
        a2 * tiles_ * p.c + products * (1 if p.groups == 1 else 2),
        products + aligned_out + parts,
        # the crop's copy, made while the caller still holds the products
        products + aligned_out + output if aligned_out != output else 0,
    )
    return (filters + max(stages) - output) * p.itemsize


def cost_s(p: ConvProblem, alpha: int) -> float:
    """Filter transform (the weights' copy into (C, K) order, one GEMM), the padded copy (runs of
    C), per block the gather (runs of C) and the two axis GEMMs, the alpha^2 channel GEMMs
    (P x C/g) @ (C/g x K/g), per block the output GEMM and the scatter (runs of K), and the
    crop where the tiles reach past the output."""
    mh, mw, th, tw = tiles(p, alpha)
    item, a2, kg, cg = p.itemsize, alpha * alpha, p.k // p.groups, p.c // p.groups
    tiles_ = p.n * th * tw
    filters = (cost.copy_s(p.k * cg * p.r * p.s, item, p.r * p.s)
               + cost.gemm_s(a2, p.k * cg, p.r * p.s, item))
    x_pad = p.n * (th * mh + p.r - 1) * (tw * mw + p.s - 1) * p.c
    inputs = cost.copy_s(x_pad, item) + cost.copy_s(p.n * p.h * p.w * p.c, item, p.c)
    for block in blocks(p, alpha, p.c):
        count = _block_tiles(p, alpha, block)[1]
        inputs += (cost.copy_s(a2 * count * p.c, item, p.c)
                   + cost.gemm_s(alpha, alpha * count * p.c, alpha, item)
                   + cost.gemm_s(alpha, count * p.c, alpha, item, batch=alpha) + cost.calls_s(6))
    channels = cost.gemm_s(tiles_, kg, cg, item, batch=a2 * p.groups)
    if p.groups > 1:
        channels += cost.copy_s(a2 * tiles_ * p.k, item, kg)
    outputs = 0.0
    for block in blocks(p, alpha, p.k):
        count = _block_tiles(p, alpha, block)[1]
        outputs += (cost.gemm_s(mh * mw, count * p.k, a2, item)
                    + cost.copy_s(mh * mw * count * p.k, item, p.k) + cost.calls_s(5))
    if (th * mh, tw * mw) != (p.out_h, p.out_w):
        outputs += cost.copy_s(p.n * p.k * p.out_h * p.out_w, item, p.k)
    return filters + inputs + channels + outputs + cost.calls_s(8)
