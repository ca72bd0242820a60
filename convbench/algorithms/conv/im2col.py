"""im2col: unfold every window into a column, then one GEMM per group.

The unfold is one strided copy (no Python loop over output positions). A 1x1, stride-1, unpadded
convolution needs no unfold at all: the input already is the column matrix, and it is a plain
batched GEMM over the images with no copy. A strided 1x1 one (ResNet's downsampling) copies the
subsampled input, then takes the same per-image GEMMs, which write NCHW directly. Both take the
per-image GEMMs only when each image has at least PER_IMAGE_MIN_COLUMNS outputs; below that,
the one wide GEMM of the column matrix is faster (measured on ResNet-50's downsamples at N=8:
28x28 and 14x14 outputs 14-18% faster per image, 7x7 ones 15% slower; on its stride-1 1x1
layers at 7x7, N=8, 2 threads, side by side in one process: 4.4-4.6 ms against 5.3-5.4, and
7.5 against 10.1 for C=1024, K=2048).
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
    """Whether numpy arrays of `p` take the compiled path (layout_kernels), compiled kernels
    enabled and worth it (compiled.worth): a 2-D problem of one group in channels-last memory
    (a pointwise layer's GEMM on the input itself, no copy), or NCHW that needs an unfold, at
    a stride, with at least
    PER_IMAGE_MIN_COLUMNS outputs per image, where numpy's unfold copies one value at a time.
    Measured on ResNet-50 at N=8, 2 threads, side by side in one process (compiled against
    the NCHW path): the stride-2 3x3 layers at 28x28 and 14x14 outputs 19.2 against 23.5 ms
    and 14.8 against 16.8, at 7x7 11.1 against 9.9 (slower: the two transposes and a GEMM no
    faster); the 7x7 stem and layer4's stride-1 3x3 level (20.3 / 20.7, 12.1 / 12.1); in
    channels-last memory the stride-2 3x3 at 28x28 10.4 against 14.5."""
    # the cheapest refusals first: every call of im2col asks (16 us on the smoke suite's 1x1)
    if not p.channels_last and p.stride == (1, 1):
        return False
    if p.rank != 2 or p.groups != 1:
        return False
    if not compiled.worth(p.macs):
        return False
    if p.channels_last:  # a 1x1 layer's GEMM on the input itself
        return True
    return not is_subsampled_pointwise(p) and p.out_h * p.out_w >= PER_IMAGE_MIN_COLUMNS


def _compiled_images(p: ConvProblem) -> int:
    """Images per chunk of the compiled path's column matrix."""
    per_image = p.out_h * p.out_w * p.r * p.s * p.c * p.itemsize
    return max(1, min(p.n, COMPILED_CHUNK_BYTES // per_image))


def _compiled_workspace(p: ConvProblem) -> int:
    """The input's channels-last copy (NCHW), the weights in (R*S*C, K) order, a chunk's
    columns and the NHWC result (NCHW: beside the output at the end)."""
    output = p.n * p.k * p.out_h * p.out_w
    x_copy = 0 if p.channels_last else p.n * p.c * p.h * p.w
    unfolded = not layout_kernels.pointwise(p)
    chunk = _compiled_images(p) * p.out_h * p.out_w * p.r * p.s * p.c * unfolded
    weights = p.r * p.s * p.c * p.k * (p.r * p.s > 1)
    stages = (x_copy + weights + chunk + output, 0 if p.channels_last else 2 * output)
    return (max(stages) - output) * p.itemsize


def _compiled_cost(p: ConvProblem) -> float:
    """The transposes (NCHW), the weights' reorder (over 1x1), the column matrix (runs of S*C;
    none for a pointwise layer) and the GEMM's read of it where it is larger than the cache,
    one GEMM (N*OH*OW x R*S*C) @ (R*S*C x K). Without that read the model priced these paths
    20-25% under their times on ResNet-50's stride-2 3x3 layers and the stem (NCHW, N=8, 2
    threads: 11.1 ms modelled against 14.0 measured on layer2's, 19.2 against 22.9 on the
    stem, whose columns take 59 MB), and level with polyphase Winograd on the stem where that
    took 18% less."""
    item, pixels = p.itemsize, p.n * p.out_h * p.out_w
    width = p.r * p.s * p.c
    layout = 0.0 if p.channels_last else (cost.transpose_s(p.n * p.c * p.h * p.w, item)
                                          + cost.transpose_s(pixels * p.k, item))
    images = _compiled_images(p)
    chunks = -(-p.n // images)
    weights = cost.transpose_s(width * p.k, item) if p.r * p.s > 1 else 0.0
    unfold = 0.0
    if not layout_kernels.pointwise(p):
        columns = images * p.out_h * p.out_w * width
        read = chunks * columns * item / cost.MACHINE.copy_bytes_per_s
        unfold = cost.copy_s(pixels * width, item, p.s * p.c) + (
            read if columns * item > cost.MACHINE.cache_bytes else 0.0)
    return (layout + weights + unfold + cost.gemm_s(pixels, p.k, width, item)
            + cost.calls_s(6 + 2 * chunks))


def _compiled(p: ConvProblem, x: Array, w: Array, bias: Array | None) -> Array:
    """The convolution through the compiled layout kernels: the input channels last (a view,
    or a blocked transpose of NCHW), per chunk of images its column matrix (runs of S*C) and
    one GEMM with the weights in (R*S*C, K) order into the NHWC result, bias added, put back
    into NCHW for an NCHW problem."""
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
    if p.channels_last:
        return y.transpose(0, 3, 1, 2)
    return layout_kernels.channels_first(y, threads)


def workspace_bytes(p: ConvProblem) -> int:
    """Peak memory above the call's start, less the output (what convbench measures): the column
    matrix beside the padded input (if padded), then beside the GEMM result, which is then
    copied into NCHW order (with one image that copy is free and the result is the output)."""
    if compiled_path(p):
        return _compiled_workspace(p)
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
        return _compiled_cost(p)
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
