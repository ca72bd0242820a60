"""Convolution by FFT (scipy.fft; cupy.fft, torch.fft) of rank 2 or 3 (rank 1 through
lowering): the product of transforms, summed over channels per frequency.

Cross-correlation is multiplication by the conjugate of the kernel's transform. Transforms are
real (rfftn/irfftn over the spatial axes) at next_fast_len sizes of the padded input, large
enough that the circular wrap never reaches the outputs we keep. Stride by subsampling the
stride-1 result, dilation by a kernel with zeros between its taps, groups as a batch of
per-frequency channel GEMMs. Channels-last input costs nothing extra: it is copied into the
zero-extended transform input as any input is, and the result is cropped into channels-last
memory. scipy.fft uses the workers set by `scipy.fft.set_workers` (the harness sets the thread
count).
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

from convbench.algorithms import cost
from convbench.algorithms.windows import add_bias
from convbench.backends import ARRAY_API_BACKENDS
from convbench.problems import LAYOUTS, ConvProblem
from convbench.algorithms.registry import register
from convbench.backends.xp import Array, contiguous, device, irfftn, namespace, rfftn


@functools.lru_cache(maxsize=4096)
def fft_shape(p: ConvProblem) -> tuple[int, ...]:
    """Transform sizes: the padded input, rounded up to sizes scipy.fft handles fastest (kept
    per problem: every call asks, twice)."""
    from scipy.fft import next_fast_len  # imported on use: `import convbench` stays light

    return tuple(next_fast_len(size + before + after, real=True) for size, before, after in zip(
        p.size, p.padding, p.padding_after, strict=True))


def frequencies(shape: tuple[int, ...]) -> int:
    """Values of a real transform of `shape`: the last axis halved (Hermitian symmetry)."""
    return math.prod(shape[:-1]) * (shape[-1] // 2 + 1)


def _frequencies(p: ConvProblem) -> int:
    return frequencies(fft_shape(p))


def window(offset: tuple[int, ...], step: tuple[int, ...], sizes: tuple[int, ...]
           ) -> tuple[object, ...]:
    """The index of `sizes` pixels placed at `offset`, `step` apart, on the trailing axes."""
    return (..., *(slice(o, o + s * (n - 1) + 1, s) for o, s, n in zip(
        offset, step, sizes, strict=True)))


def zero_extended(a: Array, shape: tuple[int, ...], offset: tuple[int, ...],
                  step: tuple[int, ...] | None = None, *, index: tuple[object, ...] | None = None,
                  xp: Any = None) -> Array:
    """`a` placed at `offset` (with `step` between its pixels) on its trailing axes, in zeros of
    the transform size, so that scipy.fft transforms it in place instead of zero-padding a copy
    of its own. Any memory layout of `a` is copied in the same one pass. `index` (the window's,
    precomputed) and `xp` spare a per-call cost on tiny problems."""
    xp = xp or namespace(a)
    out = xp.zeros(shape, dtype=a.dtype, device=device(a))
    if index is None:
        index = window(offset, step or (1,) * len(offset), a.shape[a.ndim - len(offset):])
    out[index] = a
    return out


class Plan(NamedTuple):
    """What every call of one problem computes the same way: the transform's sizes and axes, the
    zero-extended input's and kernels' shapes and windows, and the kept outputs' index. Made
    once per problem: tiny problems take about a hundred microseconds a call, and Python's
    share of that is the gate's business."""

    shape: tuple[int, ...]
    half: tuple[int, ...]  # the real transform's: last axis halved
    axes: tuple[int, ...]
    input_shape: tuple[int, ...]
    input_index: tuple[object, ...]
    filter_shape: tuple[int, ...]
    filter_index: tuple[object, ...]
    crop_index: tuple[object, ...]
    to_last: tuple[int, ...] | None  # (N, K, *out) -> (N, *out, K) for channels last
    from_last: tuple[int, ...] | None


@functools.lru_cache(maxsize=4096)
def plan(p: ConvProblem) -> Plan:
    shape = fft_shape(p)
    cg, rank = p.c // p.groups, p.rank
    last = p.channels_last
    return Plan(
        shape=shape, half=(*shape[:-1], shape[-1] // 2 + 1), axes=tuple(range(-rank, 0)),
        input_shape=(p.n, p.c, *shape), input_index=window(p.padding, (1,) * rank, p.size),
        filter_shape=(p.k, cg, *shape),
        filter_index=window((0,) * rank, p.dilation, p.kernel),
        crop_index=(slice(None), slice(None), *(slice(0, (o - 1) * s + 1, s) for o, s in zip(
            p.out_size, p.stride, strict=True))),
        to_last=(0, *range(2, 2 + rank), 1) if last else None,
        from_last=(0, 1 + rank, *range(1, 1 + rank)) if last else None)


def filter_transform(p: ConvProblem, w: Array, xp: Any = None) -> Array:
    """conj(FFT(dilated kernel)) arranged for the channel GEMM: (F, G, K/g, C/g), complex."""
    xp = xp or namespace(w)
    g, kg, cg = p.groups, p.k // p.groups, p.c // p.groups
    q = plan(p)
    dilated = zero_extended(w, q.filter_shape, (), index=q.filter_index, xp=xp)
    spectrum = rfftn(dilated, q.shape, q.axes)
    del dilated
    spectrum = xp.reshape(xp.conj(spectrum), (g, kg, cg, -1))  # (G, K/g, C/g, F)
    return contiguous(xp.permute_dims(spectrum, (3, 0, 1, 2)))


def strided_crop(p: ConvProblem, full: Array, xp: Any = None) -> Array:
    """The outputs kept from the stride-1 result (N, K, *shape): every stride-th of the first,
    copied into the problem's memory layout (channels last for nhwc)."""
    q = plan(p)
    y = full[q.crop_index]
    if q.to_last is None:
        return contiguous(y)
    xp = xp or namespace(full)
    last = contiguous(xp.permute_dims(y, q.to_last))  # (N, *out, K)
    return xp.permute_dims(last, q.from_last)


def fft(p: ConvProblem, x: Array, w: Array, bias: Array | None,
        prepared: Array | None = None) -> Array:
    xp = namespace(x, w)
    g, cg = p.groups, p.c // p.groups
    q = plan(p)
    weights = filter_transform(p, w, xp) if prepared is None else prepared  # (F, G, K/g, C/g)
    padded = zero_extended(x, q.input_shape, (), index=q.input_index, xp=xp)
    spectrum = rfftn(padded, q.shape, q.axes)  # (N, C, *half)
    del padded
    spectrum = contiguous(xp.permute_dims(xp.reshape(spectrum, (p.n, g, cg, -1)), (3, 1, 2, 0)))
    product = xp.matmul(weights, spectrum)  # (F, G, C/g, N) -> (F, G, K/g, N)
    del spectrum
    product = contiguous(xp.permute_dims(product, (3, 1, 2, 0)))  # (N, G, K/g, F)
    full = irfftn(xp.reshape(product, (p.n, p.k, *q.half)), q.shape, q.axes)
    del product
    y = strided_crop(p, full, xp)
    if y.dtype != x.dtype:
        y = xp.astype(y, x.dtype)
    return add_bias(y, bias, xp)


def workspace_bytes(p: ConvProblem) -> int:
    """Peak memory above the call's start, less the output (what convbench measures): the filter
    spectrum (complex, two items an element) throughout, plus at each stage what it holds."""
    points = math.prod(fft_shape(p))
    f, n, k, cg = _frequencies(p), p.n, p.k, p.c // p.groups
    weights = 2 * f * k * cg
    output = n * k * p.pixels
    filter_stage = max(k * cg * points + 2 * k * cg * f, 2 * weights)
    stages = (
        n * p.c * points + 2 * n * p.c * f,  # zero-extended input, its spectrum
        4 * n * p.c * f,  # the spectrum and its reordering
        2 * n * p.c * f + 2 * n * k * f,  # reordered spectrum, product
        4 * n * k * f,  # the product and its reordering
        2 * n * k * f + n * k * points,  # reordered product, the real inverse
        n * k * points + output,  # the inverse and the strided output
    )
    return (max(filter_stage, weights + max(stages)) - output) * p.itemsize


def cost_s(p: ConvProblem) -> float:
    """The filter spectrum (K*C/g zero-extended kernels, their rfftn, conjugated and reordered),
    the input's (N*C volumes, rfftn, reordered by frequency), one complex GEMM (K/g x C/g) @
    (C/g x N) per frequency and group, the product reordered, N*K irfftn and the strided crop."""
    points, f = math.prod(fft_shape(p)), _frequencies(p)
    kc, cg = p.k * (p.c // p.groups), p.c // p.groups
    item, complex_item = p.itemsize, 2 * p.itemsize
    weights = (cost.copy_s(kc * points, item)
               + cost.copy_s(kc * math.prod(p.kernel), item, p.kernel[-1])
               + cost.fft_s(points, kc) + cost.copy_s(kc * f, complex_item)
               + cost.copy_s(kc * f, complex_item, cg))
    inputs = (cost.copy_s(p.n * p.c * points, item)
              + cost.copy_s(p.n * p.c * math.prod(p.size), item, p.size[-1])
              + cost.fft_s(points, p.n * p.c) + cost.copy_s(p.n * p.c * f, complex_item, p.n))
    products = (cost.gemm_s(p.k // p.groups, p.n, cg, complex_item, batch=f * p.groups,
                            complex_values=True)
                + cost.copy_s(p.n * p.k * f, complex_item, f))
    outputs = (cost.fft_s(points, p.n * p.k)
               + cost.copy_s(p.n * p.k * p.pixels, item, p.out_size[-1]))
    return weights + inputs + products + outputs + cost.calls_s(14)


register(
    "conv2d", "fft", backends=ARRAY_API_BACKENDS, workspace_bytes=workspace_bytes, cost_s=cost_s,
    prepare=lambda p, x, w, bias: filter_transform(p, w), ranks=(2, 3), layouts=LAYOUTS,
    tolerance_floor_eps=32.0, error_spreads=True,  # measured errors stay within sqrt(L) eps
    summary="scipy.fft rfftn: per-frequency channel GEMMs; stride by subsampling; 1-D to 3-D, "
    "channels last",
)(fft)
