"""im2col: unfold every window into a column, then one GEMM per group.

The unfold is one strided copy (no Python loop over output positions). A 1x1, stride-1, unpadded
convolution needs no unfold at all: the input already is the column matrix, and it is a plain
batched GEMM over the images with no copy. A strided 1x1 one (ResNet's downsampling) copies the
subsampled input, then takes the same per-image GEMMs, which write NCHW directly. Both take the
per-image GEMMs only when each image has at least PER_IMAGE_MIN_COLUMNS outputs; below that,
the one wide GEMM of the column matrix is faster (measured on ResNet-50's downsamples at N=8:
28x28 and 14x14 outputs 14-18% faster per image, 7x7 ones 15% slower; on its stride-1 1x1
layers at 7x7, N=8, 2 threads, side by side in one process: 4.4-4.6 ms against 5.3-5.4, and
7.5 against 10.1 for C=1024, K=2048). With the compiled kernels a strided 1x1 layer makes its
subsample with one of them, and on images under PER_IMAGE_MIN_COLUMNS outputs gathers every
image's subsample into one column matrix for one GEMM (compiled_path).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from convbench.algorithms import cost
from convbench.algorithms.windows import add_bias, pad, windows
from convbench.backends import ARRAY_API_BACKENDS
from convbench.algorithms.conv import channels_last, layout_kernels
from convbench.backends import compiled
from convbench.problems import LAYOUTS, ConvProblem
from convbench.algorithms.registry import register
from convbench.backends.xp import Array, contiguous, device, matmul, matmul_into, namespace


PER_IMAGE_MIN_COLUMNS = 128
# An unfolded layer whose images have at least this many outputs each unfolds and multiplies
# one image at a time (as aten's im2col does): one image's columns stay small, and each GEMM
# writes its image of the NCHW output directly, where the one wide GEMM needs all images'
# columns and a copy of its result into NCHW. Measured on ResNet-50 at N=8, 2 threads, side by
# side in one process: the 7x7 stem 54 -> 44 ms, layer1's 3x3 (56x56) 33 -> 24, layer2's
# (28x28) 21 -> 18; at 14x14 level, at 7x7 slower (17 -> 21).
PER_IMAGE_UNFOLD_MIN_COLUMNS = 512
# The weights (K x C/g) a 1x1 layer on small images needs before its one wide GEMM pays.
WIDE_MIN_WEIGHTS = 4096
# The compiled path's column matrix is built and multiplied this many bytes of it at a time
# (whole images).
COMPILED_CHUNK_BYTES = 1 << 28
# The NCHW compiled path multiplies chunks of whole images with at least this many outputs
# together (a larger image alone). benchmarks/im2col_nchw.py on ResNet-50 at N=8, 2 threads
# (2026-12-01), one, two, four and all eight images a chunk: layer1's 3x3 (3136 outputs an
# image) 17.6, 19.7, 19.1, 19.7 ms; the stem (12544) 19.1, 21.9, 22.7, 23.2; at 784 outputs
# (layer2's, stride 2) 18.2, 17.3, 16.3, 16.3; at 196 (layer3's) 17.4, 14.7, 13.8, 13.5; at 49
# (layer4's) 15.8, 11.4, 9.6, 8.6.
PLANAR_CHUNK_PIXELS = 3136


def _planar(p: ConvProblem) -> bool:
    """A 2-D channels-first problem: the NCHW paths below; every other one runs channels last
    (convbench.algorithms.conv.channels_last)."""
    return p.rank == 2 and not p.channels_last


def is_pointwise(p: ConvProblem) -> bool:
    """1x1 stride 1, unpadded, run as per-image GEMMs on the input itself: unless the images
    are small and the layer large enough for one wide GEMM to pay for its two copies (a tiny
    layer's copies and calls cost more than its GEMMs: 6 us a call become 30 on the smoke
    suite's 1x1)."""
    if not (_planar(p) and (p.r, p.s) == (1, 1) and p.stride == (1, 1)
            and p.padding == (0, 0)):
        return False
    pixels = p.out_h * p.out_w
    wide = (pixels < PER_IMAGE_MIN_COLUMNS <= p.n * pixels
            and p.c * p.k // p.groups >= WIDE_MIN_WEIGHTS)
    return not wide


def unfolds_per_image(p: ConvProblem) -> bool:
    return p.n > 1 and p.out_h * p.out_w >= PER_IMAGE_UNFOLD_MIN_COLUMNS


def is_subsampled_pointwise(p: ConvProblem) -> bool:
    return (_planar(p) and (p.r, p.s) == (1, 1) and p.stride != (1, 1) and p.padding == (0, 0)
            and p.out_h * p.out_w >= PER_IMAGE_MIN_COLUMNS)


def compiled_path(p: ConvProblem) -> bool:
    """Whether numpy arrays of `p` take a compiled path (layout_kernels), compiled kernels
    enabled and worth it (compiled.worth), for a 2-D problem of one group:
    - channels-last memory: the column matrix of runs of S*C (none for a pointwise layer,
      whose input is its own), one GEMM into the NHWC output;
    - NCHW, but for an unpadded 1x1 layer at stride 1 (per-image GEMMs on the input itself,
      no copy): the column matrix built straight from NCHW in the weights' order, one GEMM
      per chunk of images (_nchw), where numpy's unfold copies one value at a time.
      Measured by benchmarks/im2col_nchw.py on ResNet-50 at N=8, 2 threads, torch's GEMM
      (benchmarks/measurements/2026-12-01-im2col-nchw.txt), against what each layer took
      before: at stride 1 numpy's unfold, 56, 28, 14 and 7 pixels wide 18.8 against 24.8 ms,
      16.2 against 16.4, 9.4 against 11.1, 8.4 against 9.8; at stride 2 a detour through
      channels last (two blocked transposes around the path above), 28, 14 and 7 pixels out
      16.4 against 19.0, 13.8 against 14.8, 9.1 against 11.1; the 7x7 stem 20.2 against 28.9.
      A strided 1x1 layer's subsample is made by a kernel (pointwise_columns, one image's
      plane a unit; numpy's strided copy moves one value at a time), then per-image GEMMs
      write NCHW (_subsampled); on images under PER_IMAGE_MIN_COLUMNS outputs the subsamples
      are gathered into one column matrix for one GEMM, its result put back into NCHW.
      ResNet-50's downsamples, against the array version (numpy's subsample and per-image
      GEMMs; at 7x7 numpy's unfold and one GEMM), three runs of `--pointwise` (2026-12-01,
      the last in benchmarks/measurements/2026-12-01-im2col-nchw-pointwise.txt): to 28x28
      10.8, 10.6, 12.6 ms against 12.3, 12.1, 13.3; to 14x14 10.7, 10.1, 9.0 against 11.4,
      10.7, 9.2; to 7x7 10.4, 12.2, 7.5 against 10.1, 12.5, 7.6. The 1x1 layers at stride 1
      on 7x7 images took 5.1 against 4.9 and 6.2 against 6.1 ms the gathered way, so they
      keep the array version."""
    # the cheapest refusals first: every call of im2col asks, and on the smoke suite's NCHW
    # 1x1 (9 us a call) reading the problem's properties (r, s, rank, channels_last) cost
    # 0.5 us more; macs is computed once per problem
    if p.macs < compiled.MIN_MACS:
        return False  # a small problem: the array versions (compiled.worth)
    if (p.kernel == (1, 1) and p.stride == (1, 1) and p.padding == (0, 0)
            and p.layout != "nhwc"):
        return False  # a 1x1 layer's GEMMs on the input itself (is_pointwise)
    if p.rank != 2 or p.groups != 1:
        return False
    return compiled.worth(p.macs)


def _compiled_images(p: ConvProblem) -> int:
    """Images per chunk of a compiled path's column matrix, within COMPILED_CHUNK_BYTES."""
    per_image = p.out_h * p.out_w * p.r * p.s * p.c * p.itemsize
    return max(1, min(p.n, COMPILED_CHUNK_BYTES // per_image))


def _compiled_workspace(p: ConvProblem) -> int:
    """Channels last: the weights in (R*S*C, K) order and a chunk's columns (the output is
    the NHWC result itself)."""
    unfolded = not layout_kernels.pointwise(p)
    chunk = _compiled_images(p) * p.out_h * p.out_w * p.r * p.s * p.c * unfolded
    weights = p.r * p.s * p.c * p.k * (p.r * p.s > 1)
    return (weights + chunk) * p.itemsize


def _compiled_cost(p: ConvProblem) -> float:
    """Channels last: the weights' reorder (over 1x1), the column matrix (runs of S*C; none
    for a pointwise layer) and the GEMM's read of it where it is larger than the cache, one
    GEMM (N*OH*OW x R*S*C) @ (R*S*C x K). Without that read the model priced the NCHW
    version of this path (with two transposes) 20-25% under its times on ResNet-50's
    stride-2 3x3 layers and the stem (N=8, 2 threads: 11.1 ms modelled against 14.0 measured
    on layer2's, 19.2 against 22.9 on the stem, whose columns take 59 MB)."""
    item, pixels = p.itemsize, p.n * p.out_h * p.out_w
    width = p.r * p.s * p.c
    images = _compiled_images(p)
    chunks = -(-p.n // images)
    weights = cost.transpose_s(width * p.k, item) if p.r * p.s > 1 else 0.0
    unfold = 0.0
    if not layout_kernels.pointwise(p):
        columns = images * p.out_h * p.out_w * width
        read = chunks * columns * item / cost.MACHINE.copy_bytes_per_s
        unfold = cost.copy_s(pixels * width, item, p.s * p.c) + (
            read if columns * item > cost.MACHINE.cache_bytes else 0.0)
    return weights + unfold + cost.gemm_s(pixels, p.k, width, item) + cost.calls_s(
        4 + 2 * chunks)


def _compiled(p: ConvProblem, x: Array, w: Array, bias: Array | None) -> Array:
    """The convolution through the compiled layout kernels. Channels last: the input's NHWC
    view, per chunk of images its column matrix (runs of S*C) and one GEMM with the weights
    in (R*S*C, K) order into the NHWC result, bias added. NCHW: _nchw."""
    if not p.channels_last:
        return _nchw(p, x, w, bias)
    threads = compiled.threads()
    xn = layout_kernels.channels_last(x, threads)
    weights = layout_kernels.filters(p, w, threads)
    y = np.empty((p.n, p.out_h, p.out_w, p.k), x.dtype)
    rows = y.reshape(p.n, -1, p.k)
    step = _compiled_images(p)
    for n0 in range(0, p.n, step):
        part = dataclasses.replace(p, n=min(p.n, n0 + step) - n0)
        columns = layout_kernels.columns(part, xn[n0 : n0 + part.n], threads)
        matmul_into(columns, weights, rows[n0 : n0 + part.n].reshape(-1, p.k))
        del columns
    del xn
    if bias is not None:
        y += bias.astype(y.dtype, copy=False)
    return y.transpose(0, 3, 1, 2)


def _nchw_images(p: ConvProblem) -> int:
    """Images per chunk of the NCHW compiled path: enough for PLANAR_CHUNK_PIXELS outputs
    (the GEMM's width), and no more (a smaller column matrix stays nearer the cores), within
    COMPILED_CHUNK_BYTES of columns."""
    if _planes(p):  # no unfold to keep near the cores: the widest GEMM
        return _compiled_images(p)
    return min(_compiled_images(p), -(-PLANAR_CHUNK_PIXELS // (p.out_h * p.out_w)))


def _planes(p: ConvProblem) -> bool:
    """An unpadded 1x1 layer: its column matrix is its images' (subsampled) planes, no
    unfold (layout_kernels.pointwise_columns)."""
    return p.kernel == (1, 1) and p.padding == (0, 0)


def _subsampled(p: ConvProblem) -> bool:
    """An unpadded 1x1 layer on the NCHW compiled path (a strided one: compiled_path keeps
    stride 1 off it) whose images have PER_IMAGE_MIN_COLUMNS outputs or more: its subsample
    (N, C, OH*OW), then per-image GEMMs writing NCHW (_nchw)."""
    return _planes(p) and p.out_h * p.out_w >= PER_IMAGE_MIN_COLUMNS


def _nchw_workspace(p: ConvProblem) -> int:
    """A chunk's columns and, for chunks of several images, its GEMM result (K, images *
    OH*OW), both allocated once and reused; a subsampled 1x1 layer's subsample."""
    if _subsampled(p):
        return p.n * p.c * p.out_h * p.out_w * p.itemsize
    images, pixels = _nchw_images(p), p.out_h * p.out_w
    result = p.k * images * pixels if images > 1 else 0
    return (p.c * p.r * p.s * images * pixels + result) * p.itemsize


def _nchw_cost(p: ConvProblem) -> float:
    """The column matrix (runs of OW), one GEMM (K x C*R*S) @ (C*R*S x images*OH*OW) per
    chunk, and the copy of a chunk's result into NCHW (runs of OH*OW) when it holds several
    images; a subsampled 1x1 layer's subsample and per-image GEMMs (_subsampled). Unlike the
    channels-last path's, no second pass over the columns for the GEMM's
    read (chunks of 7-15 MB of columns). ResNet-50's 3x3 layers and stem at N=8, 2 threads,
    against one run's medians: with that pass the model (a calibration at 178 GFLOP/s) priced
    six of the seven 3x3 layers at 1.2-1.75 times their time, and the stem at 26.2 ms against
    17.9, above polyphase Winograd's 23.2 (which took 26.4), so auto took polyphase there;
    without it (a calibration at 255) 0.69-1.25, the stem 18.9."""
    item, pixels = p.itemsize, p.out_h * p.out_w
    width = p.c * p.r * p.s
    if _subsampled(p):  # the subsample (runs of OW), then the per-image GEMMs
        return (cost.copy_s(p.n * pixels * width, item, p.out_w)
                + cost.gemm_s(p.k, pixels, width, item, batch=p.n) + cost.calls_s(4))
    images = _nchw_images(p)
    full, rest = divmod(p.n, images)  # full chunks, then the images of a last short one
    unfold = cost.copy_s(p.n * pixels * width, item, p.out_w)
    gemm = cost.gemm_s(p.k, images * pixels, width, item, batch=full) if full else 0.0
    if rest:
        gemm += cost.gemm_s(p.k, rest * pixels, width, item)
    to_nchw = cost.copy_s(p.n * p.k * pixels, item, pixels) if images > 1 else 0.0
    return unfold + gemm + to_nchw + cost.calls_s(4 + 3 * (full + bool(rest)))


def _nchw(p: ConvProblem, x: Array, w: Array, bias: Array | None) -> Array:
    """NCHW through the compiled kernels: per chunk of images (_nchw_images), the column
    matrix (C*R*S, images*OH*OW) built straight from NCHW (layout_kernels.planar_columns; an
    unpadded 1x1 layer's is each image's subsampled plane, pointwise_columns), one GEMM with
    the weights as they lie (K, C*R*S), into the output itself for one image, else into a
    (K, images, OH*OW) result put back into NCHW (swap_runs). No transpose of the input, of
    the weights or (one image a chunk) of the output. A strided 1x1 layer on images large
    enough (_subsampled) takes its subsample and per-image GEMMs instead."""
    threads = compiled.threads()
    x = np.ascontiguousarray(x)
    weights = np.ascontiguousarray(w).reshape(p.k, -1)
    pixels = p.out_h * p.out_w
    if _subsampled(p):  # images large enough for GEMMs of their own, written as NCHW
        sub = layout_kernels.pointwise_columns(p, x, np.empty((p.n, p.c, pixels), x.dtype),
                                               threads, images_first=True)
        y = matmul(weights, sub)
        del sub
        if bias is not None:
            y += bias.astype(y.dtype, copy=False)[:, None]
        return y.reshape(p.n, p.k, p.out_h, p.out_w)
    y = np.empty((p.n, p.k, pixels), x.dtype)
    step = _nchw_images(p)
    width = weights.shape[1]
    columns = np.empty(width * step * pixels, x.dtype)  # reused: a chunk's first touch
    result = np.empty(p.k * step * pixels, x.dtype) if step > 1 else None
    gather = _planes(p)
    for n0 in range(0, p.n, step):
        part = dataclasses.replace(p, n=min(p.n, n0 + step) - n0)
        count = part.n * pixels
        chunk = columns[: width * count].reshape(width, count)
        if gather:
            layout_kernels.pointwise_columns(part, x[n0 : n0 + part.n], chunk, threads)
        else:
            layout_kernels.planar_columns(part, x[n0 : n0 + part.n], chunk, threads)
        if result is None:
            matmul_into(weights, chunk, y[n0])
            continue
        product = result[: p.k * count].reshape(p.k, count)
        matmul_into(weights, chunk, product)
        layout_kernels.swap_runs(product.reshape(p.k, part.n, pixels), y[n0 : n0 + part.n],
                                 threads)
    del columns, result
    if bias is not None:
        y += bias.astype(y.dtype, copy=False)[:, None]
    return y.reshape(p.n, p.k, p.out_h, p.out_w)


def workspace_bytes(p: ConvProblem) -> int:
    """Peak memory above the call's start, less the output (what convbench measures): the column
    matrix beside the padded input (if padded), then beside the GEMM result, which is then
    copied into NCHW order (with one image that copy is free and the result is the output)."""
    if compiled_path(p):
        return _compiled_workspace(p) if p.channels_last else _nchw_workspace(p)
    if not _planar(p):
        return channels_last.workspace_elements(p, unfolded=True) * p.itemsize
    if is_pointwise(p):
        return 0
    if is_subsampled_pointwise(p):  # the subsampled input; the GEMMs write the output
        return p.n * p.c * p.out_h * p.out_w * p.itemsize
    padded = p.n * p.c * (p.h + 2 * p.padding[0]) * (p.w + 2 * p.padding[1])
    padded = padded if p.padding != (0, 0) else 0
    if unfolds_per_image(p):  # one image's columns beside the padded input
        return (padded + p.c * p.r * p.s * p.out_h * p.out_w) * p.itemsize
    columns = p.c * p.r * p.s * p.n * p.out_h * p.out_w
    output = p.n * p.k * p.out_h * p.out_w
    gemm_out = output if p.n > 1 else 0
    stages = (
        columns + padded,
        columns + gemm_out + (0 if p.n > 1 else output),
        gemm_out + output,
    )
    return (max(stages) - output) * p.itemsize


def cost_s(p: ConvProblem) -> float:
    """1x1 stride 1: the per-image GEMMs alone; strided 1x1: the subsampled copy, then those;
    otherwise the unfold (C*R*S x N*OH*OW items, runs of OW; slower past the resident size),
    one GEMM per group and the result's copy into NCHW (N > 1)."""
    if compiled_path(p):
        return _compiled_cost(p) if p.channels_last else _nchw_cost(p)
    if not _planar(p):
        return channels_last.cost_s(p, unfolded=True)
    g, kg, cg, pixels = p.groups, p.k // p.groups, p.c // p.groups, p.out_h * p.out_w
    if is_pointwise(p) or is_subsampled_pointwise(p):
        copy = cost.copy_s(p.n * p.c * pixels, p.itemsize, p.out_w) if p.stride != (1, 1) else 0
        return copy + cost.gemm_s(kg, pixels, cg, p.itemsize, batch=p.n * g) + cost.calls_s(3)
    columns = p.c * p.r * p.s * p.n * pixels
    unfold = cost.copy_s(columns, p.itemsize, p.out_w)
    if unfolds_per_image(p):  # no columns past the resident size, no copy into NCHW
        gemm = cost.gemm_s(kg, pixels, cg * p.r * p.s, p.itemsize, batch=p.n * g)
        return cost.padding_s(p) + unfold + gemm + cost.calls_s(1 + 3 * p.n)
    unfold += cost.oversize_s(columns * p.itemsize)
    gemm = cost.gemm_s(kg, p.n * pixels, cg * p.r * p.s, p.itemsize, batch=g)
    to_nchw = cost.copy_s(p.n * p.k * pixels, p.itemsize, pixels) if p.n > 1 else 0.0
    return cost.padding_s(p) + unfold + gemm + to_nchw + cost.calls_s(6)


def _pointwise(p: ConvProblem, x: Array, w: Array) -> Array:
    """1x1: per-image GEMMs on x (N, C, OH, OW) itself, stride 1, or subsampled (one copy)."""
    xp = namespace(x, w)
    g, cg, kg = p.groups, p.c // p.groups, p.k // p.groups
    if p.stride != (1, 1):
        x = contiguous(x[:, :, :: p.stride[0], :: p.stride[1]])  # (N, C, OH, OW), the copy
    columns = xp.reshape(x, (p.n, g, cg, p.out_h * p.out_w))  # (N, G, C/g, OH*OW), a view
    return matmul(xp.reshape(w, (g, kg, cg)), columns)  # (N, G, K/g, OH*OW)


def unfold(p: ConvProblem, x: Array) -> Array:
    """The column matrix (G, C/g*R*S, N*OH*OW): one strided copy of every window."""
    xp = namespace(x)
    g, cg = p.groups, p.c // p.groups
    win = windows(pad(x, p.padding), p)  # (N, C, R, S, OH, OW) view
    win = xp.reshape(win, (p.n, g, cg, p.r, p.s, p.out_h, p.out_w))
    win = xp.permute_dims(win, (1, 2, 3, 4, 0, 5, 6))  # (G, C/g, R, S, N, OH, OW)
    return xp.reshape(win, (g, cg * p.r * p.s, -1))  # the copy


def _per_image(p: ConvProblem, x: Array, w: Array) -> Array:
    """One image at a time: its columns (G, C/g*R*S, OH*OW), one copy, then one GEMM per group
    into its part of the NCHW output."""
    xp = namespace(x, w)
    g, kg, cg, pixels = p.groups, p.k // p.groups, p.c // p.groups, p.out_h * p.out_w
    win = windows(pad(x, p.padding), p)  # (N, C, R, S, OH, OW) view
    weights = xp.reshape(w, (g, kg, cg * p.r * p.s))
    y = xp.empty((p.n, g, kg, pixels), dtype=x.dtype, device=device(x))
    for n in range(p.n):
        columns = xp.reshape(win[n, ...], (g, cg * p.r * p.s, pixels))  # the copy
        target = y[n, ...]
        found = matmul_into(weights, columns, target)
        if found is not target:  # a library without out=: the product is a new array
            y[n, ...] = found
        del columns, found
    return y


def _unfolded(p: ConvProblem, x: Array, w: Array) -> Array:
    if unfolds_per_image(p):
        return _per_image(p, x, w)
    xp = namespace(x, w)
    g, kg = p.groups, p.k // p.groups
    y = matmul(xp.reshape(w, (g, kg, -1)), unfold(p, x))  # (G, K/g, N*OH*OW)
    y = xp.reshape(y, (g, kg, p.n, p.out_h, p.out_w))
    return contiguous(xp.permute_dims(y, (2, 0, 1, 3, 4)))  # (N, G, K/g, OH, OW)


@register(
    "conv2d", "im2col", backends=ARRAY_API_BACKENDS, exact=True,
    workspace_bytes=workspace_bytes, cost_s=cost_s, ranks=(2, 3), layouts=LAYOUTS,
    summary="unfold (vol2col in 3-D) + one GEMM per group; 1x1 stride 1 is a plain GEMM with "
    "no copy; channels last natively",
)
def conv2d_im2col(p: ConvProblem, x: Array, w: Array, bias: Array | None) -> Array:
    if compiled_path(p) and layout_kernels.usable(x, w):
        return _compiled(p, x, w, bias)
    route = _route(p)
    if route == "channels_last":
        return add_bias(channels_last.im2col(p, x, w), bias)
    y = _pointwise(p, x, w) if route == "per_image" else _unfolded(p, x, w)
    return add_bias(namespace(y).reshape(y, p.output_shape), bias)


@functools.lru_cache(maxsize=1024)
def _route(p: ConvProblem) -> str:
    """The array path of `p`: "channels_last", "per_image" (1x1, plain or subsampled) or
    "unfolded", decided once per problem (on the smoke suite's 1x1, _planar and is_pointwise
    took 1.2 us of each call, which went from 8.1 to 7.5 us with the route cached)."""
    if not _planar(p):
        return "channels_last"
    return "per_image" if is_pointwise(p) or is_subsampled_pointwise(p) else "unfolded"
