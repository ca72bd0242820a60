"""Compiled (numba) depthwise convolution for numpy arrays on a CPU: `direct`'s path for a 2-D
layer whose groups each hold one input channel (MobileNet's 3x3 depthwise layers, a depth
multiplier K/C of 1 or more).

A depthwise layer does R*S multiply-adds per output, so it is bound by memory, not by a GEMM:
direct's array version (per-tap GEMMs of k = 1, one per group) ran MobileNetV2's depthwise
layers at N=8 14-35 (NCHW) and 39-196 (channels last) times slower than oneDNN, im2col 4-16
and 30-91 times (benchmarks/depthwise.py, 2026-12-01). These kernels read the input once per
tap from where it lies and accumulate in the output's own runs:

- channels last: per output pixel, each tap's run of C input values multiplied by the tap's
  run of K weights (the weights as (R*S, K), reordered once a call) into the pixel's run of K
  outputs: every inner loop over contiguous channels;
- NCHW: per output plane, each tap's weight times a run of OW input values (read at the
  stride) into the output row.
The padding is the bounds of the loops (no padded copy); the bias starts each output. Rows of
pixels (channels last) or planes (NCHW) are shared among the run's threads (compiled.parallel).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from convbench.algorithms import cost
from convbench.algorithms.conv import layout_kernels
from convbench.backends import compiled
from convbench.problems import ConvProblem

SOURCE = '''"""convbench's depthwise kernels (written by depthwise_kernels.py; do not edit)."""

import functools

from numba import njit, uint64 as u64

jit = functools.partial(njit, cache=True, nogil=True, boundscheck=False)


@jit
def nhwc(first, last, x, hh, ww, cc, w, kk, mult, kr, ks, sh, sw, ph, pw, dh, dw, oh, ow,
         bias, y):
    """Rows [first, last) of N*OH of y (N, OH, OW, K) from x (N, H, W, C) and w (R*S, K):
    y[n, i, j, k] = bias[k] + sum over taps of x[n, i*sh - ph + r*dh, j*sw - pw + s*dw,
    k // mult] * w[r*S + s, k], taps in the padding left out."""
    for row in range(first, last):
        n = row // oh
        i = row % oh
        for j in range(ow):
            dst = u64((row * ow + j) * kk)
            for k in range(u64(kk)):
                y[dst + k] = bias[k]
            for r in range(kr):
                h = i * sh - ph + r * dh
                if h < 0 or h >= hh:
                    continue
                for s in range(ks):
                    col = j * sw - pw + s * dw
                    if col < 0 or col >= ww:
                        continue
                    src = u64(((n * hh + h) * ww + col) * cc)
                    tap = u64((r * ks + s) * kk)
                    if mult == 1:
                        for k in range(u64(kk)):
                            y[dst + k] += x[src + k] * w[tap + k]
                    else:
                        for k in range(u64(kk)):
                            y[dst + k] += x[src + k // u64(mult)] * w[tap + k]


@jit
def nchw(first, last, x, hh, ww, cc, w, kk, mult, kr, ks, sh, sw, ph, pw, dh, dw, oh, ow,
         bias, y):
    """Planes [first, last) of N*K of y (N, K, OH, OW) from x (N, C, H, W) and w (K, 1, R, S):
    y[n, k, i, j] = bias[k] + sum over taps of w[k, 0, r, s] * x[n, k // mult, i*sh - ph +
    r*dh, j*sw - pw + s*dw], taps in the padding left out; one run of OW a tap and row."""
    for plane in range(first, last):
        n = plane // kk
        k = plane % kk
        src0 = (n * cc + k // mult) * hh * ww
        dst0 = u64(plane * oh * ow)
        for i in range(oh):
            dst = dst0 + u64(i * ow)
            for j in range(u64(ow)):
                y[dst + j] = bias[k]
            for r in range(kr):
                h = i * sh - ph + r * dh
                if h < 0 or h >= hh:
                    continue
                for s in range(ks):
                    weight = w[u64((k * kr + r) * ks + s)]
                    shift = s * dw - pw  # input column of output j: j*sw + shift
                    lo = 0
                    while lo < ow and lo * sw + shift < 0:
                        lo += 1
                    hi = ow
                    while hi > lo and (hi - 1) * sw + shift >= ww:
                        hi -= 1
                    src = u64(src0 + h * ww + lo * sw + shift)
                    at = dst + u64(lo)
                    count = u64(hi - lo)
                    if sw == 1:
                        for jj in range(count):
                            y[at + jj] += weight * x[src + jj]
                    elif sw == 2:
                        for jj in range(count):
                            y[at + jj] += weight * x[src + 2 * jj]
                    else:
                        for jj in range(count):
                            y[at + jj] += weight * x[src + jj * u64(sw)]
'''

# NCHW layers with outputs at least this wide run the NCHW kernel; narrower ones go through
# channels last (two blocked transposes around the channels-last kernel), whose inner loops
# run over the channels rather than over short rows. MobileNetV2's depthwise layers at N=8, 2
# threads, side by side (2026-12-01, NCHW kernel against through channels last, ms): 112 wide
# 4.88 against 10.63, 56 wide 7.36 against 9.78 (stride 2 from 112: 10.81 against 11.01),
# 28 wide 4.96 against 3.06, 14 wide 3.85 against 1.48, 7 wide 4.22 against 1.05.
NCHW_MIN_WIDTH = 56
# ... and have this many output channels or more: with fewer the channels-last kernel's loops
# over a pixel's channels are short too (a review, 2026-12-01: n8c3h48k3r7p3g3 3.67 ms through
# channels last against 0.68 in the NCHW kernel, n8c8h48k8r3p1g8 0.88 against 0.23).
NHWC_MIN_CHANNELS = 32

# An inner loop of the kernels (a pixel's tap over its K channels, or a row's tap over its OW
# outputs) costs about this many strided runs (MachineModel.run_s) beside its elements: on
# n8c3h112k6r7p3g3 channels last (4.9 M loops of 6 channels) the kernels took 38.6 ms, about
# 8 ns a loop on 2 threads, where fft took 13.3 (a review, 2026-12-01).
LOOP_RUNS = 2

# A depthwise layer takes the kernels from MIN_MACS / WORTH_SCALE multiply-adds: it moves as
# many bytes per multiply-add as a GEMM-bound layer moves per hundreds (MobileNetV2's depthwise
# layers at N=8 have 3.4 to 32.5 M, half of them under MIN_MACS).
WORTH_SCALE = 16


@functools.cache
def _kernels() -> Any:
    return compiled.module("depthwise", SOURCE)


def depthwise(p: ConvProblem) -> bool:
    """A 2-D layer of several groups, one input channel each (a depth multiplier K/C of 1 or
    more), padded alike on both sides."""
    return p.groups > 1 and p.c == p.groups and p.rank == 2 and p.symmetric


def modelled(p: ConvProblem) -> bool:
    """Whether numpy arrays of `p` take the kernels (compiled.worth, at WORTH_SCALE)."""
    return depthwise(p) and compiled.worth(p.macs * WORTH_SCALE)


def applies(p: ConvProblem, x: Any, w: Any, bias: Any = None) -> bool:
    """Whether this call takes the kernels: a modelled problem, and numpy arrays of its shapes
    in its own (native) dtype, which the kernels read unchecked; anything else runs the array
    version, which raises its own errors."""
    if not (modelled(p) and type(x) is np.ndarray and type(w) is np.ndarray):
        return False
    dtype = np.dtype(p.dtype)
    return (x.shape == p.input_shape and w.shape == p.weight_shape and x.dtype == dtype
            and w.dtype == dtype and (bias is None or (type(bias) is np.ndarray
                                                       and bias.shape == (p.k,))))


def _through_channels_last(p: ConvProblem) -> bool:
    """Whether the channels-last kernel runs `p`: a channels-last problem, or an NCHW one with
    outputs under NCHW_MIN_WIDTH wide and NHWC_MIN_CHANNELS outputs a pixel or more (then with
    a blocked transpose in and out)."""
    return p.channels_last or (p.out_w < NCHW_MIN_WIDTH and p.k >= NHWC_MIN_CHANNELS)


def _flat(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1)


def convolution(p: ConvProblem, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None
                ) -> np.ndarray:
    """The depthwise convolution (N, K, OH, OW): channels-last memory for a channels-last
    problem, NCHW-contiguous for an NCHW one, the bias added."""
    threads, mult = compiled.threads(), p.k // p.c
    b = (np.zeros(p.k, x.dtype) if bias is None
         else np.ascontiguousarray(bias, dtype=x.dtype))
    args = (p.h, p.w, p.c)
    geometry = (p.k, mult, p.r, p.s, *p.stride, *p.padding, *p.dilation, p.out_h, p.out_w)
    kernels = _kernels()
    if _through_channels_last(p):
        xn = _flat(layout_kernels.channels_last(x, threads))
        taps = np.ascontiguousarray(w.reshape(p.k, p.r * p.s).T)  # (R*S, K)
        y = np.empty((p.n, p.out_h, p.out_w, p.k), x.dtype)
        compiled.parallel(lambda q, first, last: kernels.nhwc(
            first, last, xn, *args, _flat(taps), *geometry, b, _flat(y)),
            p.n * p.out_h, threads)
        del xn, taps
        if p.channels_last:
            return y.transpose(0, 3, 1, 2)
        return layout_kernels.channels_first(y, threads)
    xc, wc = _flat(np.ascontiguousarray(x)), _flat(np.ascontiguousarray(w))
    y = np.empty((p.n, p.k, p.out_h, p.out_w), x.dtype)
    compiled.parallel(lambda q, first, last: kernels.nchw(
        first, last, xc, *args, wc, *geometry, b, _flat(y)), p.n * p.k, threads)
    return y


def workspace_bytes(p: ConvProblem) -> int:
    """The bias's zeros (without a bias); through channels last, the weights as (R*S, K), and
    for an NCHW problem the input's channels-last copy beside the channels-last result, then
    that result beside the output (its size: less the output, the larger of the copy and
    it)."""
    zeros = 0 if p.bias else p.k
    if not _through_channels_last(p):
        return zeros * p.itemsize
    taps = p.r * p.s * p.k
    if p.channels_last:
        return (zeros + taps) * p.itemsize
    inputs, outputs = p.n * p.c * p.h * p.w, p.n * p.k * p.out_h * p.out_w
    return (zeros + max(taps + inputs, outputs)) * p.itemsize  # the weights freed before


def cost_s(p: ConvProblem) -> float:
    """The input read once and the output written, the multiply-adds at the compiled loops'
    rate (both: a depthwise layer is bound by its memory, with loops of R*S multiply-adds an
    output around it), a strided run's overhead (run_s) for each inner loop (a pixel's tap
    over K channels; NCHW, a row's tap over OW outputs: layers of few channels or narrow rows
    are mostly that overhead), and an NCHW problem's two transposes when it goes through
    channels last."""
    inputs, outputs = p.n * p.c * p.h * p.w, p.n * p.k * p.out_h * p.out_w
    through = _through_channels_last(p)
    loops = p.n * p.out_h * (p.out_w if through else p.k) * p.r * p.s
    moved = (cost.copy_s(inputs + outputs, p.itemsize) + cost.kernel_loop_s(2 * p.macs)
             + loops * LOOP_RUNS * cost.MACHINE.run_s)
    if through and not p.channels_last:
        moved += cost.transpose_s(inputs, p.itemsize) + cost.transpose_s(outputs, p.itemsize)
    return moved + cost.calls_s(4)
