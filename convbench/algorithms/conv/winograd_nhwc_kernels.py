"""Compiled (numba) stages of the channels-last Winograd pipeline, for numpy arrays on a CPU.

The array version (winograd_nhwc.py) moves every tile through a padded copy, a gather and two
GEMMs of k = alpha; numpy's array operations there run far below memory bandwidth (on
ResNet-50's layer1 at N=8 its input transform took longer than the 36 channel GEMMs). These
kernels, generated per transform from the pinned matrices (each row of BT, AT and G one
straight-line combination over a run of channels, `source`), do each transform in one pass:

- input: a tile's alpha x alpha runs of C values are read straight from the NHWC input (the
  padding is the bounds of the loop, no padded copy), BT_h applied down its rows into a small
  buffer, then BT_w along them into V (alpha^2, tiles, C); every inner loop runs over C
  contiguous values, so LLVM vectorises it;
- output: AT_h down the rows of a tile's products, AT_w along them, the bias added, each output
  pixel's K values written into the NHWC output where it lies inside it (the crop is the loop's);
- filters: per input channel its R*S taps gathered into runs of K, G_h down, G_w along, into U
  (alpha^2, C, K), written once.

NCHW problems run the same pipeline: layout_kernels puts the input channels last and the
result back.

Two arrangements (`fused` picks):
- staged: the input transform of every tile, the alpha^2 channel GEMMs by the GEMM engine
  (convbench.backends.gemm, on its threads), the output transform of every tile; the threads
  share the tiles.
- fused: each thread takes blocks of tiles and runs the whole pipeline on one block at a time,
  its V and products (block buffers sized to a core's L2) never leaving the cache, the channel
  GEMMs by single-threaded BLAS (np.dot). It pays where the transformed filters are small
  enough to stay in cache beside the blocks (every block reads all of them): ResNet-50's
  layer1 (C = K = 64), not layers 2-4.

Offsets are unsigned and the arrays flat: with signed offsets LLVM kept the channel loops
scalar (a 16 ms input transform on layer1 against 3 ms). Workers get buffers allocated by
the caller (numpy), so that convbench's memory measurement sees all of the workspace.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from convbench.algorithms import cost
from convbench.algorithms.conv import layout_kernels
from convbench.algorithms.conv.winograd_nd import matrices
from convbench.algorithms.conv.winograd_nhwc import channel_gemms, tiles
from convbench.backends import compiled
from convbench.backends.xp import CPU_CHUNK_BYTES
from convbench.problems import ConvProblem

# fused when the transformed filters fit in this many bytes (a share of a core's L2 beside the
# block buffers; every block reads all of them)
FUSED_MAX_FILTER_BYTES = 2 * CPU_CHUNK_BYTES
# a fused block's V and products together take at most this many bytes
FUSED_BLOCK_BYTES = 2 * CPU_CHUNK_BYTES
# loop_rate times the transforms of ResNet-50's layer2 3x3 at N=8, channels last, through
# F(4,3)'s 6x6 tiles (1.6 MB in, 3.6 MB transformed)
LOOP_PROBLEM, LOOP_ALPHA = ConvProblem(8, 64, 28, 28, 64, 3, 3, padding=1, layout="nhwc"), 6


def modelled(p: ConvProblem) -> bool:
    """Whether the kernels run `p` on numpy arrays (so cost_s and workspace_bytes are theirs):
    2-D, numba enabled, and large enough (compiled.worth); every problem's dtype (float32,
    float64) has its generated kernels."""
    # the size first: every call of winograd asks, and macs is computed once per problem
    return p.macs >= compiled.MIN_MACS and p.rank == 2 and compiled.worth(p.macs)


def applies(p: ConvProblem, x: Any, w: Any) -> bool:
    """Whether the compiled kernels run this call: numpy arrays and a `modelled` problem."""
    return type(x) is np.ndarray and type(w) is np.ndarray and modelled(p)


def fused(p: ConvProblem, alpha: int, threads: int) -> bool:
    """Whether the fused arrangement runs `p`: one group, transformed filters that stay in
    cache, and at least two blocks per thread."""
    if p.groups != 1 or alpha * alpha * p.c * p.k * p.itemsize > FUSED_MAX_FILTER_BYTES:
        return False
    return math.ceil(tile_count(p, alpha) / block_tiles(p, alpha)) >= 2 * threads


def tile_count(p: ConvProblem, alpha: int) -> int:
    _, _, th, tw = tiles(p, alpha)
    return p.n * th * tw


def block_tiles(p: ConvProblem, alpha: int) -> int:
    """Tiles per fused block: V and the products of a block in FUSED_BLOCK_BYTES."""
    per_tile = alpha * alpha * (p.c + p.k) * p.itemsize
    return max(1, min(tile_count(p, alpha), FUSED_BLOCK_BYTES // per_tile))


def _combination(row: np.ndarray, names: list[str]) -> str:
    """sum(row[k] * names[k]) as straight-line code, zeros left out, +-1 as additions."""
    terms = []
    for coefficient, name in zip(row.tolist(), names):
        if coefficient == 0:
            continue
        size = abs(coefficient)
        term = name if size == 1 else f"K({size!r}) * {name}"
        terms.append(("- " if coefficient < 0 else "+ ") + term)
    text = " ".join(terms) or "+ K(0.0)"
    return text[2:] if text.startswith("+ ") else "-" + text[2:]


def _rows_source(name: str, matrix: np.ndarray, bias: bool) -> str:
    """A function applying `matrix` (rows x cols) to `cols` runs of n values, src[so + k*ss:]
    for k < cols, writing `rows` runs dst[do + r*ds:] (plus bias[:n] where `bias`): one loop
    over the run, every product a constant, so that LLVM keeps the inputs in vector
    registers."""
    rows, cols = matrix.shape
    names = [f"d{k}" for k in range(cols)]
    lines = [f"@jit\ndef {name}(src, so, ss, dst, do, ds, n{', bias' if bias else ''}):",
             "    so, ss, do, ds = u64(so), u64(ss), u64(do), u64(ds)",
             "    for c in range(u64(n)):"]
    lines += [f"        d{k} = src[so + u64({k}) * ss + c]"
              for k in range(cols) if np.any(matrix[:, k] != 0)]
    for r in range(rows):
        value = _combination(matrix[r], names)
        lines.append(f"        dst[do + u64({r}) * ds + c] = "
                     + (f"bias[c] + ({value})" if bias else value))
    return "\n".join(lines) + "\n"


# The per-tile and per-block code, the same for every transform: the generated row functions
# (BT_H, BT_W, AT_H, AT_W_BIAS, G_H, G_W) and the sizes (A, MH, MW, R, S) come before it in
# each module.
_PIPELINE = '''

@jit
def in_tile(x, hh, ww, cc, n, h0, w0, tile, tmp, v, t, tiles):
    """V[:, t, :] = BT_h d BT_w^T of the tile of image n whose corner is (h0, w0): read in
    place where the tile lies inside the input, else from a zero-padded copy."""
    if h0 >= 0 and w0 >= 0 and h0 + A <= hh and w0 + A <= ww:
        so = ((n * hh + h0) * ww + w0) * cc
        for col in range(A):
            BT_H(x, so + col * cc, ww * cc, tmp, col * cc, A * cc, cc)
    else:
        for q in range(A * A * cc):
            tile[q] = 0
        for k in range(A):
            h = h0 + k
            if h < 0 or h >= hh:
                continue
            for col in range(A):
                w = w0 + col
                if w < 0 or w >= ww:
                    continue
                src, dst = u64(((n * hh + h) * ww + w) * cc), u64((k * A + col) * cc)
                for c in range(u64(cc)):
                    tile[dst + c] = x[src + c]
        for col in range(A):
            BT_H(tile, col * cc, A * cc, tmp, col * cc, A * cc, cc)
    for r in range(A):
        BT_W(tmp, r * A * cc, cc, v, (r * A * tiles + t) * cc, tiles * cc, cc)


@jit
def out_tile(m, t, tiles, kk, n, i, j, oh, ow, bias, tmp, tile, y):
    """Output tile (i, j) of image n: AT_h M AT_w^T plus the bias, its pixels inside the
    output written (the whole tile in place where it fits)."""
    for col in range(A):
        AT_H(m, (col * tiles + t) * kk, A * tiles * kk, tmp, col * kk, A * kk, kk)
    h0, w0 = i * MH, j * MW
    if h0 + MH <= oh and w0 + MW <= ow:
        for r in range(MH):
            AT_W_BIAS(tmp, r * A * kk, kk, y, ((n * oh + h0 + r) * ow + w0) * kk, kk, kk, bias)
        return
    for r in range(MH):
        AT_W_BIAS(tmp, r * A * kk, kk, tile, r * MW * kk, kk, kk, bias)
    for r in range(min(MH, oh - h0)):
        for s in range(min(MW, ow - w0)):
            dst = u64(((n * oh + h0 + r) * ow + w0 + s) * kk)
            src = u64((r * MW + s) * kk)
            for c in range(u64(kk)):
                y[dst + c] = tile[src + c]


@jit
def input_transform(first, last, x, hh, ww, cc, ph, pw, th, tw, v, tmp, tile):
    """V (A^2, P, C) of tiles [first, last) of P = N*th*tw."""
    tiles = v.size // (A * A * cc)
    for t in range(first, last):
        n, i, j = t // (th * tw), (t // tw) % th, t % tw
        in_tile(x, hh, ww, cc, n, i * MH - ph, j * MW - pw, tile, tmp, v, t, tiles)


@jit
def output_transform(first, last, m, kk, th, tw, oh, ow, bias, y, tmp, tile):
    """The NHWC output (flat) of tiles [first, last) of the products m (A^2, P, K)."""
    tiles = m.size // (A * A * kk)
    for t in range(first, last):
        n, i, j = t // (th * tw), (t // tw) % th, t % tw
        out_tile(m, t, tiles, kk, n, i, j, oh, ow, bias, tmp, tile, y)


@jit
def filter_transform(first, last, w, kk, cc, u, taps, rows):
    """U (A^2, C, K) for input channels [first, last) of the weights w (K, C, R, S): per
    channel its R*S taps gathered into runs of K (taps), G_h down the kernel's rows (rows),
    then G_w along them into U's runs of K."""
    for c in range(first, last):
        for k in range(kk):
            src = u64((k * cc + c) * R * S)
            for t in range(R * S):
                taps[u64(t * kk + k)] = w[src + u64(t)]
        for j in range(S):
            G_H(taps, j * kk, S * kk, rows, j * kk, S * kk, kk)
        for a in range(A):
            G_W(rows, a * S * kk, kk, u, (a * A * cc + c) * kk, cc * kk, kk)


@jit
def pipeline(first, last, x, n_, hh, ww, cc, ph, pw, th, tw, u, oh, ow, bias, y, vb, mb,
             tmp, tile, per_block):
    """Blocks [first, last) of per_block tiles, each through the whole convolution: its tiles
    transformed into vb, one GEMM per A^2 point with u (A^2, C, K) into mb (single-threaded
    BLAS: the caller's threads each run blocks), the products transformed into y."""
    kk = u.shape[2]
    tiles = n_ * th * tw
    for blk in range(first, last):
        start = blk * per_block
        count = min(tiles, start + per_block) - start
        for t in range(count):
            tt = start + t
            n, i, j = tt // (th * tw), (tt // tw) % th, tt % tw
            in_tile(x, hh, ww, cc, n, i * MH - ph, j * MW - pw, tile, tmp, vb, t, count)
        v3 = vb[: A * A * count * cc].reshape((A * A, count, cc))
        m3 = mb[: A * A * count * kk].reshape((A * A, count, kk))
        for s in range(A * A):
            np.dot(v3[s], u[s], m3[s])
        for t in range(count):
            tt = start + t
            n, i, j = tt // (th * tw), (tt // tw) % th, tt % tw
            out_tile(mb, t, count, kk, n, i, j, oh, ow, bias, tmp, tile, y)
'''


def source(axes: tuple, dtype: str) -> str:
    """The kernels' module for one transform set: `axes` ((AT_h, AT_w), _, (BT_h, BT_w)) as
    float64 matrices, constants of `dtype`."""
    (ath, atw), (gh, gw), (bth, btw) = axes
    header = (f'"""convbench\'s channels-last Winograd kernels, alpha {bth.shape[0]}, '
              f'{dtype} (generated by winograd_nhwc_kernels.py; do not edit)."""\n\n'
              "import functools\n\nimport numpy as np\nfrom numba import njit, uint64 as u64\n\n"
              f"K = np.{dtype}\n"
              f"A, MH, MW, R, S = {bth.shape[0]}, {ath.shape[0]}, {atw.shape[0]}, "
              f"{gh.shape[1]}, {gw.shape[1]}\n"
              'jit = functools.partial(njit, cache=True, nogil=True, boundscheck=False, '
              'fastmath={"contract"})\n\n\n')
    rows = "\n\n".join((_rows_source("BT_H", bth, False), _rows_source("BT_W", btw, False),
                        _rows_source("AT_H", ath, False), _rows_source("AT_W_BIAS", atw, True),
                        _rows_source("G_H", gh, False), _rows_source("G_W", gw, False)))
    return header + rows + _PIPELINE


@functools.cache
def _module(alpha: int, r: int, s: int, dtype: str) -> Any:
    """The compiled kernels of F(alpha - r + 1, r) x F(alpha - s + 1, s) in `dtype`."""
    axes = tuple(zip(matrices(alpha - r + 1, r, "float64"),
                     matrices(alpha - s + 1, s, "float64")))  # winograd.axis_transforms
    return compiled.module(f"winograd_nhwc_a{alpha}r{r}s{s}_{dtype}", source(axes, dtype))


def _flat(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1)


def _kernels(p: ConvProblem, alpha: int) -> Any:
    return _module(alpha, p.r, p.s, p.dtype)


def filter_transform(p: ConvProblem, w: np.ndarray, alpha: int) -> np.ndarray:
    """U = G g G^T of every (c, k) pair of a one-group problem, (alpha^2, 1, C, K): the layout
    winograd_nhwc.filter_transform gives, from compiled kernels (its GEMM of k = R*S and the
    weights' strided copy took 8.5 ms on ResNet-50's layer4 at F(2,3))."""
    w = np.ascontiguousarray(w)
    a2, workers = alpha * alpha, compiled.threads()
    u = np.empty((a2, 1, p.c, p.k), w.dtype)
    taps = np.empty((workers, p.r * p.s * p.k), w.dtype)
    rows = np.empty((workers, alpha * p.s * p.k), w.dtype)
    kernel = _kernels(p, alpha).filter_transform
    compiled.parallel(lambda q, first, last: kernel(first, last, _flat(w), p.k, p.c, _flat(u),
                                                    taps[q], rows[q]), p.c, workers)
    return u


def _tile_buffers(p: ConvProblem, alpha: int, workers: int, dtype: np.dtype
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Each worker's two tile buffers (a tile's alpha^2 runs of C or K values each)."""
    return tuple(np.empty((workers, alpha * alpha * max(p.c, p.k)), dtype) for _ in range(2))


def input_stage(p: ConvProblem, x: np.ndarray, alpha: int, workers: int) -> np.ndarray:
    """V (alpha^2, P, C) of every tile of x (N, H, W, C) (the staged arrangement's first
    stage)."""
    _, _, th, tw = tiles(p, alpha)
    a2, count, kernel = alpha * alpha, tile_count(p, alpha), _kernels(p, alpha).input_transform
    xn = _flat(x)
    v = np.empty((a2, count, p.c), x.dtype)
    tmp, tile = _tile_buffers(p, alpha, workers, x.dtype)
    compiled.parallel(lambda q, first, last: kernel(
        first, last, xn, p.h, p.w, p.c, *p.padding, th, tw, _flat(v), tmp[q], tile[q]),
        count, workers)
    return v


def output_stage(p: ConvProblem, m: np.ndarray, bias: np.ndarray, alpha: int, workers: int
                 ) -> np.ndarray:
    """The NHWC output (N, OH, OW, K) of the products m (alpha^2, P, K), bias added."""
    _, _, th, tw = tiles(p, alpha)
    a2, count, kernel = alpha * alpha, tile_count(p, alpha), _kernels(p, alpha).output_transform
    y = np.empty((p.n, p.out_h, p.out_w, p.k), m.dtype)
    mf = _flat(np.ascontiguousarray(m))
    tmp, tile = _tile_buffers(p, alpha, workers, m.dtype)
    compiled.parallel(lambda q, first, last: kernel(
        first, last, mf, p.k, th, tw, p.out_h, p.out_w, bias, _flat(y), tmp[q], tile[q]),
        count, workers)
    return y


def fused_stages(p: ConvProblem, x: np.ndarray, u: np.ndarray, bias: np.ndarray, alpha: int,
                 threads: int) -> np.ndarray:
    """The NHWC output (N, OH, OW, K) of x (N, H, W, C), every stage fused per block of
    tiles."""
    _, _, th, tw = tiles(p, alpha)
    a2, per_block = alpha * alpha, block_tiles(p, alpha)
    blocks = math.ceil(tile_count(p, alpha) / per_block)
    workers = min(threads, blocks)
    kernel = _kernels(p, alpha).pipeline
    xn, u0 = _flat(x), np.ascontiguousarray(u[:, 0])
    y = np.empty((p.n, p.out_h, p.out_w, p.k), x.dtype)
    vb = np.empty((workers, a2 * per_block * p.c), x.dtype)
    mb = np.empty((workers, a2 * per_block * p.k), x.dtype)
    tmp, tile = _tile_buffers(p, alpha, workers, x.dtype)
    with compiled.single_threaded_blas():
        compiled.parallel(lambda q, first, last: kernel(
            first, last, xn, p.n, p.h, p.w, p.c, *p.padding, th, tw, u0, p.out_h, p.out_w,
            bias, _flat(y), vb[q], mb[q], tmp[q], tile[q], per_block), blocks, workers)
    return y


def convolution(p: ConvProblem, x: np.ndarray, u: np.ndarray, bias: np.ndarray | None,
                alpha: int) -> np.ndarray:
    """The convolution (N, K, OH, OW) from x (N, C, H, W) and the transformed filters u
    (alpha^2, G, C/g, K/g): channels-last memory for a channels-last problem; for an NCHW one,
    the input put channels last and the result back (blocked transposes), NCHW-contiguous."""
    b = (np.zeros(p.k, x.dtype) if bias is None
         else np.ascontiguousarray(bias, dtype=x.dtype))
    threads = compiled.threads()
    xn = layout_kernels.channels_last(x, threads)
    if fused(p, alpha, threads):
        y = fused_stages(p, xn, u, b, alpha, threads)
        del xn
    else:
        workers = min(threads, tile_count(p, alpha))
        v = input_stage(p, xn, alpha, workers)
        del xn
        m = channel_gemms(p, v, u)  # (alpha^2, P, K)
        del v
        y = output_stage(p, m, b, alpha, workers)
        del m
    if p.channels_last:
        return y.transpose(0, 3, 1, 2)
    return layout_kernels.channels_first(y, threads)


def workspace_bytes(p: ConvProblem, alpha: int) -> int:
    """Peak memory above the call's start, less the output (what convbench measures): the
    transformed filters and the bias's zeros throughout, plus at each stage: the weights'
    (C, K)-order copy (the filter transform), then the pipeline's stages (pipeline_elements).
    An NCHW problem adds the NHWC result beside the NCHW output at the end."""
    filters = alpha * alpha * p.k * (p.c // p.groups) + p.k
    output = p.n * p.k * p.out_h * p.out_w
    stages = [p.k * (p.c // p.groups) * p.r * p.s, 0 if p.channels_last else 2 * output,
              pipeline_elements(p, alpha)]
    return (filters + max(stages) - output) * p.itemsize


def pipeline_elements(p: ConvProblem, alpha: int) -> int:
    """The most elements the tile pipeline holds at once beside its input and filters, its
    NHWC result included: fused, the NHWC output and each worker's block and tile buffers;
    staged, V and the workers' tile buffers, V and the products (with groups, their
    channels-first copy beside them), the products, the NHWC output and the tile buffers. An
    NCHW problem's input adds its channels-last copy (to the end of the input transform)."""
    a2, count, threads = alpha * alpha, tile_count(p, alpha), compiled.threads()
    output = p.n * p.k * p.out_h * p.out_w
    x_copy = 0 if p.channels_last else p.n * p.h * p.w * p.c
    buffers = 2 * a2 * max(p.c, p.k)  # a worker's tile buffers
    if fused(p, alpha, threads):
        per_block = block_tiles(p, alpha)
        workers = min(threads, math.ceil(count / per_block))
        return x_copy + output + workers * (a2 * per_block * (p.c + p.k) + buffers)
    workers = min(threads, count)
    v, products = a2 * count * p.c, a2 * count * p.k
    return max(x_copy + v + workers * buffers, v + products * (1 if p.groups == 1 else 2),
               products + output + workers * buffers)


def transform_flops(p: ConvProblem, alpha: int) -> tuple[float, float]:
    """The input and the output transforms' arithmetic as the cost model counts it: per tile
    and channel, BT down alpha columns then along alpha rows, AT likewise (about alpha/2
    nonzeros per row of each), two flops per multiply-add (loop_rate times both transforms
    against this count)."""
    mh, mw, _, _ = tiles(p, alpha)
    count = tile_count(p, alpha)
    return (2 * count * p.c * 2 * alpha * alpha * alpha / 2,
            2 * count * p.k * (mh * alpha + mh * mw) * alpha / 2)


def cost_s(p: ConvProblem, alpha: int) -> float:
    """The filter transform (compiled for one group; else the weights' copy into (C, K) order
    and one GEMM), the tile transforms' arithmetic (vectorised loops, BT and AT's nonzeros)
    and the input read and output written once, the alpha^2 channel GEMMs (fused: at the rate
    of the OpenBLAS the kernels call, not the GEMM engine's; on ResNet-50's layer2 with
    torch's engine the model put fused F(2,3) level with staged F(4,3), which took 0.66 of its
    time in NCHW and 0.72 channels last); staged, V and the products also written and read
    back from memory (fused keeps them in cache)."""
    mh, mw, th, tw = tiles(p, alpha)
    item, a2, kg, cg = p.itemsize, alpha * alpha, p.k // p.groups, p.c // p.groups
    count = tile_count(p, alpha)
    if p.groups == 1:  # compiled: the taps gathered, G down and along, U written once
        filters = (cost.transpose_s(p.k * p.c * p.r * p.s, item)
                   + cost.copy_s(a2 * p.k * p.c, item)
                   + cost.kernel_loop_s(2 * p.k * p.c * alpha * p.s * (p.r + alpha)))
    else:
        filters = (cost.copy_s(p.k * cg * p.r * p.s, item, p.r * p.s)
                   + cost.gemm_s(a2, p.k * cg, p.r * p.s, item))
    flops = sum(transform_flops(p, alpha))
    inputs = cost.copy_s(p.n * p.h * p.w * p.c, item) + cost.copy_s(p.n * p.out_h * p.out_w
                                                                      * p.k, item)
    arranged_fused = fused(p, alpha, compiled.threads())
    # fused: OpenBLAS inside the kernel (numba's np.dot), whatever the engine
    # (kernel_gemm_flops_per_s)
    peak = cost.MACHINE.kernel_gemm_flops_per_s if arranged_fused else None
    channels = cost.gemm_s(count, kg, cg, item, batch=a2 * p.groups, peak=peak)
    if not arranged_fused:
        inputs += cost.copy_s(a2 * count * (p.c + p.k), item)
        if p.groups > 1:
            channels += cost.copy_s(a2 * count * p.k, item, kg)
    if not p.channels_last:  # the two blocked transposes
        inputs += (cost.transpose_s(p.n * p.h * p.w * p.c, item)
                   + cost.transpose_s(p.n * p.out_h * p.out_w * p.k, item))
    return filters + cost.kernel_loop_s(flops) + inputs + channels + cost.calls_s(8)


def loop_rate(copy_rate: float, threads: int) -> float | None:
    """The compiled kernels' loop rate on `threads` threads, cost.MachineModel's
    compiled_flops_per_s (None where the kernels are off): the input and output transforms'
    flops (transform_flops) of LOOP_PROBLEM over their fastest times less the bytes each reads and writes at the copy rate (at least a
    quarter of each time left, on a machine where the bytes alone would take it all)."""
    if not compiled.enabled():
        return None
    from convbench.measure import calibrate  # `convbench machine`'s, not import time's

    p, alpha = LOOP_PROBLEM, LOOP_ALPHA
    x = np.ones((p.n, p.h, p.w, p.c), dtype=np.float32)
    v = input_stage(p, x, alpha, threads)  # compiles the kernels, or loads them
    m, bias = np.ones(v.shape[:2] + (p.k,), dtype=np.float32), np.zeros(p.k, np.float32)
    y = output_stage(p, m, bias, alpha, threads)
    loops_s = 0.0
    for stage, nbytes in ((lambda: input_stage(p, x, alpha, threads), x.nbytes + v.nbytes),
                          (lambda: output_stage(p, m, bias, alpha, threads),
                           m.nbytes + y.nbytes)):
        time_s = calibrate.fastest_s(stage)
        loops_s += max(time_s - nbytes / copy_rate, time_s / 4)
    return sum(transform_flops(p, alpha)) / loops_s
