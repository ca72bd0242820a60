"""Convolution by FFT (scipy.fft; cupy.fft, torch.fft): the product of transforms, summed over
channels per frequency.

Cross-correlation is multiplication by the conjugate of the kernel's transform. Transforms are
real (rfft2/irfft2) at next_fast_len sizes of the padded input, large enough that the circular
wrap never reaches the outputs we keep. Stride by subsampling the stride-1 result, dilation by a
kernel with zeros between its taps, groups as a batch of per-frequency channel GEMMs.
scipy.fft uses the workers set by `scipy.fft.set_workers` (the harness sets the thread count).
"""

from __future__ import annotations

from convbench.algorithms import cost
from convbench.algorithms.windows import add_bias
from convbench.backends import ARRAY_API_BACKENDS
from convbench.problems import ConvProblem
from convbench.algorithms.registry import register
from convbench.backends.xp import Array, contiguous, device, irfft2, namespace, rfft2


def fft_shape(p: ConvProblem) -> tuple[int, int]:
    """Transform sizes: the padded input, rounded up to sizes scipy.fft handles fastest."""
    from scipy.fft import next_fast_len  # imported on use: `import convbench` stays light

    return (next_fast_len(p.h + 2 * p.padding[0], real=True),
            next_fast_len(p.w + 2 * p.padding[1], real=True))


def _frequencies(p: ConvProblem) -> int:
    hf, wf = fft_shape(p)
    return hf * (wf // 2 + 1)


def _zero_extended(a: Array, shape: tuple[int, ...], offset: tuple[int, int],
                   step: tuple[int, int] = (1, 1)) -> Array:
    """`a` placed at `offset` (with `step` between its pixels) in zeros of the transform size, so
    that scipy.fft transforms it in place instead of zero-padding a copy of its own."""
    xp = namespace(a)
    out = xp.zeros(shape, dtype=a.dtype, device=device(a))
    (oh, ow), (sh, sw) = offset, step
    out[..., oh : oh + sh * (a.shape[-2] - 1) + 1 : sh,
        ow : ow + sw * (a.shape[-1] - 1) + 1 : sw] = a
    return out


def filter_transform(p: ConvProblem, w: Array) -> Array:
    """conj(FFT(dilated kernel)) arranged for the channel GEMM: (F, G, K/g, C/g), complex."""
    xp = namespace(w)
    g, kg, cg = p.groups, p.k // p.groups, p.c // p.groups
    shape = fft_shape(p)
    dilated = _zero_extended(w, (p.k, cg, *shape), (0, 0), p.dilation)
    spectrum = rfft2(dilated, shape)
    del dilated
    spectrum = xp.reshape(xp.conj(spectrum), (g, kg, cg, -1))  # (G, K/g, C/g, F)
    return contiguous(xp.permute_dims(spectrum, (3, 0, 1, 2)))


def fft(p: ConvProblem, x: Array, w: Array, bias: Array | None,
        prepared: Array | None = None) -> Array:
    xp = namespace(x, w)
    g, cg = p.groups, p.c // p.groups
    hf, wf = shape = fft_shape(p)
    weights = filter_transform(p, w) if prepared is None else prepared  # (F, G, K/g, C/g)
    padded = _zero_extended(x, (p.n, p.c, hf, wf), p.padding)
    spectrum = rfft2(padded, shape)  # (N, C, hf, wf/2+1)
    del padded
    spectrum = contiguous(xp.permute_dims(xp.reshape(spectrum, (p.n, g, cg, -1)), (3, 1, 2, 0)))
    product = xp.matmul(weights, spectrum)  # (F, G, C/g, N) -> (F, G, K/g, N)
    del spectrum
    product = contiguous(xp.permute_dims(product, (3, 1, 2, 0)))  # (N, G, K/g, F)
    full = irfft2(xp.reshape(product, (p.n, p.k, hf, wf // 2 + 1)), shape)
    del product
    (sh, sw), (oh, ow) = p.stride, (p.out_h, p.out_w)
    y = contiguous(full[:, :, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw])  # stride
    if y.dtype != x.dtype:
        y = xp.astype(y, x.dtype)
    return add_bias(y, bias)


def workspace_bytes(p: ConvProblem) -> int:
    """Peak memory above the call's start, less the output (what convbench measures): the filter
    spectrum (complex, two items an element) throughout, plus at each stage what it holds."""
    hf, wf = fft_shape(p)
    f, n, k, cg = _frequencies(p), p.n, p.k, p.c // p.groups
    weights = 2 * f * k * cg
    output = n * k * p.out_h * p.out_w
    filter_stage = max(k * cg * hf * wf + 2 * k * cg * f, 2 * weights)
    stages = (
        n * p.c * hf * wf + 2 * n * p.c * f,  # zero-extended input, its spectrum
        4 * n * p.c * f,  # the spectrum and its reordering
        2 * n * p.c * f + 2 * n * k * f,  # reordered spectrum, product
        4 * n * k * f,  # the product and its reordering
        2 * n * k * f + n * k * hf * wf,  # reordered product, the real inverse
        n * k * hf * wf + output,  # the inverse and the strided output
    )
    return (max(filter_stage, weights + max(stages)) - output) * p.itemsize


def cost_s(p: ConvProblem) -> float:
    """The filter spectrum (K*C/g zero-extended kernels, their rfft2, conjugated and reordered),
    the input's (N*C planes, rfft2, reordered by frequency), one complex GEMM (K/g x C/g) @
    (C/g x N) per frequency and group, the product reordered, N*K irfft2 and the strided crop."""
    hf, wf = fft_shape(p)
    points, f, kc, cg = hf * wf, _frequencies(p), p.k * (p.c // p.groups), p.c // p.groups
    item, complex_item = p.itemsize, 2 * p.itemsize
    weights = (cost.copy_s(kc * points, item) + cost.copy_s(kc * p.r * p.s, item, p.s)
               + cost.fft_s(points, kc) + cost.copy_s(kc * f, complex_item)
               + cost.copy_s(kc * f, complex_item, cg))
    inputs = (cost.copy_s(p.n * p.c * points, item) + cost.copy_s(p.n * p.c * p.h * p.w, item, p.w)
              + cost.fft_s(points, p.n * p.c) + cost.copy_s(p.n * p.c * f, complex_item, p.n))
    products = (cost.gemm_s(p.k // p.groups, p.n, cg, complex_item, batch=f * p.groups,
                            complex_values=True)
                + cost.copy_s(p.n * p.k * f, complex_item, f))
    outputs = (cost.fft_s(points, p.n * p.k)
               + cost.copy_s(p.n * p.k * p.out_h * p.out_w, item, p.out_w))
    return weights + inputs + products + outputs + cost.calls_s(14)


register(
    "conv2d", "fft", backends=ARRAY_API_BACKENDS, workspace_bytes=workspace_bytes, cost_s=cost_s,
    prepare=lambda p, x, w, bias: filter_transform(p, w),
    tolerance_floor_eps=32.0, error_spreads=True,  # measured errors stay within sqrt(L) eps
    summary="scipy.fft rfft2: per-frequency channel GEMMs; stride by subsampling",
)(fft)
