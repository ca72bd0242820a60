"""The weight gradient by FFT (cuDNN's FFT bwd_filter algorithms), at rank 2 or 3.

grad_w[k, c, t] = sum over n and output positions o of grad_out[n, k, o] * x_pad[n, c, o*S + t*d]
is a correlation: at lag t*d, of each padded input volume with the output gradient spread to
every S-th pixel. Both are transformed at conv.fft's sizes (the padded input, rounded up: no lag
we keep reaches past it, so the circular wrap never does); per frequency, conj(G) X summed over
N is one complex GEMM (K/g x N) @ (N x C/g) per group; the inverse of each (k, c) product holds
every lag, and the taps are read at multiples of the dilation. Its work follows the padded input
and N*K*C/g, not the kernel: a large kernel costs no more than a small one.
"""

from __future__ import annotations

import math

from convbench.algorithms import cost
from convbench.algorithms.conv.fft import fft_shape, frequencies, zero_extended
from convbench.backends.xp import Array, contiguous, irfftn, namespace, rfftn
from convbench.problems import ConvProblem


def _by_frequency(spectrum: Array, p: ConvProblem, order: tuple[int, ...]) -> Array:
    """A spectrum (N, channels, *half) as (N, G, channels/g, F) permuted by `order`, contiguous:
    a batch of GEMM operands, one per frequency and group."""
    xp = namespace(spectrum)
    grouped = xp.reshape(spectrum, (p.n, p.groups, spectrum.shape[1] // p.groups, -1))
    return contiguous(xp.permute_dims(grouped, order))


def _gradient_spectrum(p: ConvProblem, grad_out: Array, shape: tuple[int, ...]) -> Array:
    """conj(FFT(grad_out spread to every S-th pixel)) as (F, G, K/g, N)."""
    xp = namespace(grad_out)
    spread = zero_extended(grad_out, (p.n, p.k, *shape), (0,) * p.rank, p.stride)
    spectrum = rfftn(spread, shape)
    del spread
    conjugated = xp.conj(spectrum)
    del spectrum
    return _by_frequency(conjugated, p, (3, 1, 2, 0))


def _input_spectrum(p: ConvProblem, x: Array, shape: tuple[int, ...]) -> Array:
    """FFT(the padded input) as (F, G, N, C/g)."""
    padded = zero_extended(x, (p.n, p.c, *shape), p.padding)
    spectrum = rfftn(padded, shape)
    del padded
    return _by_frequency(spectrum, p, (3, 1, 0, 2))


def backward_weight(p: ConvProblem, grad_out: Array, x: Array) -> Array:
    """grad_w (K, C/g, *kernel): the correlation of x with grad_out, by FFT."""
    xp = namespace(grad_out, x)
    shape = fft_shape(p)
    half = (*shape[:-1], shape[-1] // 2 + 1)
    gradient = _gradient_spectrum(p, grad_out, shape)  # (F, G, K/g, N)
    inputs = _input_spectrum(p, x, shape)  # (F, G, N, C/g)
    product = xp.matmul(gradient, inputs)  # (F, G, K/g, C/g): summed over N
    del gradient, inputs
    product = contiguous(xp.permute_dims(product, (1, 2, 3, 0)))  # (G, K/g, C/g, F)
    lags = irfftn(xp.reshape(product, (p.k, p.c // p.groups, *half)), shape)
    del product
    taps = tuple(slice(0, (k - 1) * d + 1, d) for k, d in zip(p.kernel, p.dilation,
                                                               strict=True))
    grad_w = contiguous(lags[(slice(None), slice(None), *taps)])
    return grad_w if grad_w.dtype == x.dtype else xp.astype(grad_w, x.dtype)


def workspace_bytes(p: ConvProblem) -> int:
    """Peak memory above the call's start, less grad_w: at each stage what it holds (complex
    values count two items)."""
    shape = fft_shape(p)
    points, f = math.prod(shape), frequencies(shape)
    n, k, c, kc = p.n, p.k, p.c, p.k * (p.c // p.groups)
    output = kc * math.prod(p.kernel)
    gradient = 2 * n * k * f  # the gradient's spectrum, held until the GEMMs
    stages = (
        n * k * points + gradient,  # spread gradient, its spectrum
        2 * gradient,  # the spectrum and its conjugate; the conjugate and its reordering
        gradient + n * c * points + 2 * n * c * f,  # zero-extended input, its spectrum
        gradient + 4 * n * c * f,  # the input's spectrum and its reordering
        gradient + 2 * n * c * f + 2 * kc * f,  # both operands, the product
        4 * kc * f,  # the product and its reordering
        2 * kc * f + kc * points,  # reordered product, the real inverse
        kc * points + output,  # the inverse and the taps read from it
    )
    return (max(stages) - output) * p.itemsize


def cost_s(p: ConvProblem) -> float:
    """The gradient's spectrum (N*K spread volumes, rfftn, conjugated, reordered by frequency),
    the input's (N*C padded volumes, rfftn, reordered), one complex GEMM (K/g x N) @ (N x C/g)
    per frequency and group, the product reordered, K*C/g irfftn and the taps read; the bias
    gradient's sum."""
    shape = fft_shape(p)
    points, f = math.prod(shape), frequencies(shape)
    n, k, c, cg = p.n, p.k, p.c, p.c // p.groups
    item, complex_item = p.itemsize, 2 * p.itemsize
    gradient = (cost.copy_s(n * k * points, item)
                + cost.copy_s(n * k * p.pixels, item, p.out_size[-1])
                + cost.fft_s(points, n * k) + cost.copy_s(n * k * f, complex_item)
                + cost.copy_s(n * k * f, complex_item, n))
    inputs = (cost.copy_s(n * c * points, item)
              + cost.copy_s(n * c * math.prod(p.size), item, p.size[-1])
              + cost.fft_s(points, n * c) + cost.copy_s(n * c * f, complex_item, cg))
    products = (cost.gemm_s(k // p.groups, cg, n, complex_item, batch=f * p.groups,
                            complex_values=True)
                + cost.copy_s(k * cg * f, complex_item, f))
    outputs = (cost.fft_s(points, k * cg)
               + cost.copy_s(k * cg * math.prod(p.kernel), item, p.kernel[-1]))
    bias = cost.transform_s(n * k * p.pixels) if p.bias else 0.0
    return gradient + inputs + products + outputs + bias + cost.calls_s(16)
