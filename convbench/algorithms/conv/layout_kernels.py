"""Compiled (numba) layout kernels for numpy arrays on a CPU: NCHW to channels-last and back,
and the channels-last column matrix of im2col with its weights.

- channels_last / channels_first: a blocked transpose per image (32 x 32 blocks that stay in
  cache), where numpy's strided copy moves one value per inner-loop step: ResNet-50's layer1
  input (N=8, 1.6 M values) 0.87 ms against 1.44 on 2 threads.
- columns: im2col's column matrix in channels-last order, (N*OH*OW, R*S*C): per output pixel
  and kernel row, the S*C values of the window's row are one contiguous run of the NHWC input
  (dilation 1), copied as such, the parts in the padding written as zeros. numpy's unfold of an
  NCHW input at stride 2 moves one value at a time (on ResNet-50's layer2 stride-2 3x3, about
  half of im2col's 23.5 ms beside a 10.7 ms GEMM);
- filters: the weights (K, C, R, S) as (R*S*C, K), blocked (numpy's strided copy took 8.4 ms
  for 512 x 512 x 3 x 3).
- planar_columns: im2col's column matrix of an NCHW input in the weights' (c, r, s) order,
  (C*R*S, N*OH*OW), straight from NCHW: runs of OW values read at the stride, no transpose of
  the input or of the weights; pointwise_columns the same for an unpadded 1x1 kernel, one
  image's (subsampled) plane a unit (on ResNet-50's stride-2 downsample to 28x28 at N=8, 1.3
  ms against planar_columns' 2.4);
- swap_runs: (A, B, run) as (B, A, run), a GEMM's result (K, N, OH*OW) put back into NCHW on
  the run's threads.

The kernels release the GIL and run on compiled.parallel's threads, one run of images or
pixels each.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from convbench.backends import compiled
from convbench.problems import ConvProblem

SOURCE = '''"""convbench's layout kernels (written by layout_kernels.py; do not edit)."""

import functools

import numpy as np
from numba import njit, uint64 as u64

jit = functools.partial(njit, cache=True, nogil=True, boundscheck=False)


@jit
def transpose(first, last, x, y, rows, cols):
    """y[n] = x[n].T for images n in [first, last): x (N, rows, cols) into y (N, cols, rows),
    both flat, in 32 x 32 blocks."""
    for n in range(first, last):
        base = n * rows * cols
        for r0 in range(0, rows, 32):
            for c0 in range(0, cols, 32):
                for r in range(r0, min(rows, r0 + 32)):
                    for c in range(c0, min(cols, c0 + 32)):
                        y[u64(base + c * rows + r)] = x[u64(base + r * cols + c)]


@jit
def swap_runs(first, last, x, y, aa, bb, run):
    """y[b, a] = x[a, b] for units a*B + b in [first, last): x (A, B, run) into y (B, A,
    run), both flat, each run one contiguous copy."""
    for unit in range(first, last):
        a = unit // bb
        b = unit % bb
        src = u64(unit * run)
        dst = u64((b * aa + a) * run)
        for k in range(u64(run)):
            y[dst + k] = x[src + k]


@jit
def pointwise_columns(first, last, x, cc, hh, ww, nn, oh, ow, sh, sw, images_first, out):
    """The column matrix out (C, N*OH*OW) of a 1x1 kernel, unpadded, on the NCHW input x (N,
    C, H, W), for units c*N + n in [first, last): x[n, c, i*sh, j*sw] into out[c, (n*OH + i)
    *OW + j], or (images_first) the subsample (N, C, OH*OW), out[n, c, i*OW + j]; at stride 1
    one contiguous run of the plane, at stride 2 across a constant step."""
    pixels = u64(oh * ow)
    for unit in range(first, last):
        c = unit // nn
        n = unit % nn
        dst = u64(n * cc + c if images_first else unit) * pixels
        plane = u64((n * cc + c) * hh * ww)
        if sh == 1 and sw == 1 and ow == ww:
            for k in range(pixels):
                out[dst + k] = x[plane + k]
            continue
        for i in range(oh):
            src = plane + u64(i * sh * ww)
            at = dst + u64(i * ow)
            if sw == 2:
                for j in range(u64(ow)):
                    out[at + j] = x[src + 2 * j]
            else:
                for j in range(u64(ow)):
                    out[at + j] = x[src + j * u64(sw)]


@jit
def filters(first, last, w, out, kk, cc, taps):
    """Rows of out (taps*C, K) for blocks [first, last) of 32 of w's columns: w (K, C*taps)
    (taps = R*S) transposed, each column c*taps + t becoming row t*C + c (the column matrix's
    (r, s, c) order), in 32 x 32 blocks."""
    m = cc * taps
    for b in range(first, last):
        for k0 in range(0, kk, 32):
            for col in range(b * 32, min(m, b * 32 + 32)):
                row = u64(((col % taps) * cc + col // taps) * kk)
                for k in range(k0, min(kk, k0 + 32)):
                    out[row + u64(k)] = w[u64(k * m + col)]


@jit
def columns(first, last, x, hh, ww, cc, oh, ow, kr, ks, sh, sw, ph, pw, dh, dw, out):
    """Rows [first, last) of the column matrix out (N*OH*OW, R*S*C) of the NHWC input x: the
    window of output pixel (n, i, j) in (r, s, c) order, zeros where it lies in the padding."""
    width = kr * ks * cc
    for pixel in range(first, last):
        n = pixel // (oh * ow)
        i = (pixel // ow) % oh
        j = pixel % ow
        row = u64(pixel * width)
        w0 = j * sw - pw
        for r in range(kr):
            h = i * sh - ph + r * dh
            dst = row + u64(r * ks * cc)
            if h < 0 or h >= hh:
                for q in range(u64(ks * cc)):
                    out[dst + q] = 0
                continue
            src = u64((n * hh + h) * ww * cc)
            if dw == 1:  # the window's row: one run of S*C values, cut at the edges
                lo = min(ks, max(0, -w0))
                hi = max(lo, min(ks, ww - w0))
                for q in range(u64(lo * cc)):
                    out[dst + q] = 0
                start = src + u64((w0 + lo) * cc)
                for q in range(u64((hi - lo) * cc)):
                    out[dst + u64(lo * cc) + q] = x[start + q]
                for q in range(u64(hi * cc), u64(ks * cc)):
                    out[dst + q] = 0
                continue
            for s in range(ks):
                w = w0 + s * dw
                tap = dst + u64(s * cc)
                if w < 0 or w >= ww:
                    for c in range(u64(cc)):
                        out[tap + c] = 0
                else:
                    at = src + u64(w * cc)
                    for c in range(u64(cc)):
                        out[tap + c] = x[at + c]


@jit
def planar_columns(first, last, x, cc, hh, ww, nn, oh, ow, kr, ks, sh, sw, ph, pw, dh, dw,
                   out):
    """Rows (c, r, 0..S-1) for units c*R + r in [first, last) of the column matrix out
    (C*R*S, N*OH*OW) of the NCHW input x (N, C, H, W): row (c, r, s) holds x[n, c, i*sh - ph
    + r*dh, j*sw - pw + s*dw] over the output pixels (n, i, j), zeros in the padding; one
    written run of OW per output row."""
    npq = nn * oh * ow
    for unit in range(first, last):
        c = unit // kr
        r = unit % kr
        for s in range(ks):
            row = u64(((c * kr + r) * ks + s) * npq)
            shift = s * dw - pw
            lo = 0  # the output columns whose input column lies in x: [lo, hi)
            while lo < ow and lo * sw + shift < 0:
                lo += 1
            hi = ow
            while hi > lo and (hi - 1) * sw + shift >= ww:
                hi -= 1
            for n in range(nn):
                for i in range(oh):
                    h = i * sh - ph + r * dh
                    dst = row + u64((n * oh + i) * ow)
                    if h < 0 or h >= hh:
                        for j in range(u64(ow)):
                            out[dst + j] = 0
                        continue
                    src = u64(((n * cc + c) * hh + h) * ww + lo * sw + shift)
                    for j in range(u64(lo)):
                        out[dst + j] = 0
                    for j in range(u64(hi - lo)):
                        out[dst + u64(lo) + j] = x[src + j * u64(sw)]
                    for j in range(u64(hi), u64(ow)):
                        out[dst + j] = 0


@jit
def planar_columns_phased(first, last, x, cc, hh, ww, nn, oh, ow, kr, ks, sh, sw, ph, pw, dh,
                          dw, out):
    """planar_columns for a stride across of 2 or more: each input row is copied once into a
    zero-padded line and split into its sw phases (line[k*sw + b] into phase b), and each
    tap's run of OW is then one contiguous copy from its phase, where planar_columns reads
    every value at the stride."""
    npq = nn * oh * ow
    span = -(-((ow - 1) * sw + (ks - 1) * dw + 1) // sw)  # each phase's length
    line = np.zeros(span * sw, x.dtype)  # column L of the padded row is x's column L - pw
    phases = np.zeros(span * sw, x.dtype)  # phase b at [b*span, (b+1)*span)
    first_col = min(pw, span * sw)
    valid = max(0, min(ww, span * sw - pw))
    for unit in range(first, last):
        c = unit // kr
        r = unit % kr
        base = u64((c * kr + r) * ks * npq)
        for n in range(nn):
            for i in range(oh):
                h = i * sh - ph + r * dh
                dst0 = base + u64((n * oh + i) * ow)
                if h < 0 or h >= hh:
                    for s in range(ks):
                        dst = dst0 + u64(s * npq)
                        for j in range(u64(ow)):
                            out[dst + j] = 0
                    continue
                src = u64(((n * cc + c) * hh + h) * ww)
                for k in range(u64(valid)):
                    line[u64(first_col) + k] = x[src + k]
                if sw == 2:  # the common stride, its constant step vectorized
                    for k in range(u64(span)):
                        phases[k] = line[2 * k]
                        phases[u64(span) + k] = line[2 * k + 1]
                else:
                    for b in range(sw):
                        at = u64(b * span)
                        for k in range(u64(span)):
                            phases[at + k] = line[k * u64(sw) + u64(b)]
                for s in range(ks):
                    dst = dst0 + u64(s * npq)
                    at = u64((s * dw) % sw * span + (s * dw) // sw)
                    for j in range(u64(ow)):
                        out[dst + j] = phases[at + j]


@jit
def phases(first, last, x, hh, ww, cc, sh, sw, pa, pb, ph, pw, oh, ow, out):
    """Rows [first, last) of N*OH' of the space-to-depth input out (N, OH', OW', pa*pb*C) of
    the NHWC input x at stride (sh, sw), padding (ph, pw) before: out[n, i, j, (a*pb + b)*C + c]
    = x[n, sh*i + a - ph, sw*j + b - pw, c], zero outside x; runs of C values each."""
    width = pa * pb * cc
    for row in range(first, last):
        n = row // oh
        i = row % oh
        for j in range(ow):
            dst = u64((row * ow + j) * width)
            for a in range(pa):
                h = i * sh + a - ph
                for b in range(pb):
                    w = j * sw + b - pw
                    at = dst + u64((a * pb + b) * cc)
                    if h < 0 or h >= hh or w < 0 or w >= ww:
                        for c in range(u64(cc)):
                            out[at + c] = 0
                    else:
                        src = u64(((n * hh + h) * ww + w) * cc)
                        for c in range(u64(cc)):
                            out[at + c] = x[src + c]
'''

# The output width from which planar_columns at a stride across splits each input row into its
# phases first (planar_columns_phased). Measured through im2col on ResNet-50 at N=8, 2 threads,
# side by side (benchmarks/im2col_nchw.py, 2026-12-01; phased against strided): the 7x7 stem
# (112 wide) 19.5 against 21.2 ms; layer2's stride-2 3x3 (28 wide) 16.8 against 16.7 (a first
# prototype: 12.4 against 13.1); layer3's (14 wide) 13.9 against 13.3; layer4's (7 wide) 9.9
# against 8.6.
PHASED_MIN_WIDTH = 28


@functools.cache
def _kernels() -> Any:
    return compiled.module("layout", SOURCE)


def usable(*arrays: Any) -> bool:
    """Whether the kernels take these arrays: numpy arrays (of a problem's dtype, float32 or
    float64, which the kernels are generated for), compiled kernels enabled."""
    return all(type(a) is np.ndarray for a in arrays) and compiled.enabled()


def _flat(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1)


def _transposed(x: np.ndarray, rows: int, cols: int, shape: tuple[int, ...], workers: int
                ) -> np.ndarray:
    """out[n] = x[n].T for each image of a contiguous x seen as (N, rows, cols), as `shape`."""
    out = np.empty(shape, x.dtype)
    kernel = _kernels().transpose
    compiled.parallel(lambda q, first, last: kernel(first, last, _flat(x), _flat(out), rows,
                                                    cols), x.shape[0], workers)
    return out


def swap_runs(x: np.ndarray, out: np.ndarray, workers: int) -> np.ndarray:
    """out (B, A, run) = x (A, B, run) with its first two axes swapped, both C-contiguous: a
    GEMM's result (K, N, OH*OW) as NCHW; each run one contiguous copy."""
    aa, bb, run = x.shape
    if not (x.flags.c_contiguous and out.flags.c_contiguous and out.shape == (bb, aa, run)
            and out.dtype == x.dtype):
        raise ValueError(f"swap_runs: C-contiguous x (A, B, run) and out (B, A, run) of one "
                         f"dtype needed, got {x.shape} {x.dtype} and {out.shape} {out.dtype}")
    kernel = _kernels().swap_runs
    compiled.parallel(lambda q, first, last: kernel(first, last, _flat(x), _flat(out), aa, bb,
                                                    run), aa * bb, workers)
    return out


def channels_last(x: np.ndarray, workers: int) -> np.ndarray:
    """x (N, C, H, W) as (N, H, W, C) contiguous: a view where x lies channels last, a blocked
    transpose where it lies channels first, else numpy's copy."""
    view = x.transpose(0, 2, 3, 1)
    if view.flags.c_contiguous or not x.flags.c_contiguous:
        return np.ascontiguousarray(view)
    return _transposed(x, x.shape[1], x.shape[2] * x.shape[3], view.shape, workers)


def channels_first(y: np.ndarray, workers: int) -> np.ndarray:
    """An NHWC-contiguous y (N, OH, OW, K) as an NCHW-contiguous (N, K, OH, OW)."""
    n, h, w, k = y.shape
    return _transposed(y, h * w, k, (n, k, h, w), workers)


def filters(p: ConvProblem, w: np.ndarray, workers: int) -> np.ndarray:
    """The weights (K, C, R, S) as the GEMM's right-hand side (R*S*C, K), rows in the column
    matrix's (r, s, c) order; for a 1x1 kernel the transposed view of (K, C) (BLAS reads it
    as it lies)."""
    taps = p.r * p.s
    if taps == 1:
        return w.reshape(p.k, p.c).T
    w = np.ascontiguousarray(w)
    out = np.empty((taps * p.c, p.k), w.dtype)
    kernel = _kernels().filters
    compiled.parallel(lambda q, first, last: kernel(first, last, _flat(w), _flat(out), p.k,
                                                    p.c, taps), -(-p.c * taps // 32), workers)
    return out


def phases(xn: np.ndarray, stride: tuple[int, int], phase_counts: tuple[int, int],
           padding: tuple[int, int], out_hw: tuple[int, int], workers: int) -> np.ndarray:
    """The space-to-depth input (N, OH', OW', pa*pb*C) of the NHWC input xn (N, H, W, C):
    pixel (i, j) holds the pa x pb phases' pixels (stride*(i, j) + (a, b) - padding), (phase,
    channel) order, zeros in the padding (polyphase Winograd's stride-1 problem)."""
    n, h, w, c = xn.shape
    (pa, pb), (oh, ow) = phase_counts, out_hw
    out = np.empty((n, oh, ow, pa * pb * c), xn.dtype)
    flat, kernel = _flat(np.ascontiguousarray(xn)), _kernels().phases
    compiled.parallel(lambda q, first, last: kernel(
        first, last, flat, h, w, c, *stride, pa, pb, *padding, oh,
        ow, _flat(out)), n * oh, workers)
    return out


def pointwise(p: ConvProblem) -> bool:
    """A 1x1 kernel at stride 1, unpadded: the NHWC input is its own column matrix."""
    return (p.r, p.s) == (1, 1) and p.stride == (1, 1) and p.padding == (0, 0)


def columns(p: ConvProblem, xn: np.ndarray, workers: int) -> np.ndarray:
    """im2col's column matrix (N*OH*OW, R*S*C) of the NHWC input xn (N, H, W, C) of a 2-D
    problem (symmetric padding); a view of xn itself for a pointwise one."""
    pixels = p.n * p.out_h * p.out_w
    if pointwise(p):
        return xn.reshape(pixels, p.c)
    out = np.empty((pixels, p.r * p.s * p.c), xn.dtype)
    kernel = _kernels().columns
    compiled.parallel(lambda q, first, last: kernel(
        first, last, _flat(xn), p.h, p.w, p.c, p.out_h, p.out_w, p.r, p.s, *p.stride,
        *p.padding, *p.dilation, _flat(out)), pixels, workers)
    return out


def _check_input(name: str, p: ConvProblem, x: np.ndarray, out: np.ndarray) -> None:
    """The kernels read x as `p`'s NCHW input with the padding alike on both sides, unchecked
    (boundscheck off): anything else is refused before they run."""
    if x.shape != p.input_shape or x.dtype != out.dtype or not p.symmetric:
        raise ValueError(f"{name}: x must be the NCHW input {p.input_shape} of a problem padded "
                         f"alike on both sides, in out's dtype {out.dtype}; got {x.shape} "
                         f"{x.dtype}, padding {p.padding} then {p.padding_after}")


def pointwise_columns(p: ConvProblem, x: np.ndarray, out: np.ndarray, workers: int,
                      images_first: bool = False) -> np.ndarray:
    """planar_columns of an unpadded 1x1 problem: (C, N*OH*OW), each image's plane (its
    subsample at a stride) one unit, where planar_columns copies runs of OW (at 7x7 runs of
    7 values); images_first: the subsample itself, (N, C, OH*OW)."""
    pixels = p.out_h * p.out_w
    shape = (p.n, p.c, pixels) if images_first else (p.c, p.n * pixels)
    if not out.flags.c_contiguous or out.shape != shape:
        raise ValueError(f"pointwise_columns: out must be C-contiguous, shape {shape}, got "
                         f"{out.shape}")
    _check_input("pointwise_columns", p, x, out)
    flat, kernel = _flat(np.ascontiguousarray(x)), _kernels().pointwise_columns
    compiled.parallel(lambda q, first, last: kernel(
        first, last, flat, p.c, p.h, p.w, p.n, p.out_h, p.out_w, *p.stride, images_first,
        _flat(out)), p.c * p.n, workers)
    return out


def planar_columns(p: ConvProblem, x: np.ndarray, out: np.ndarray, workers: int) -> np.ndarray:
    """im2col's column matrix (C*R*S, N*OH*OW) of the NCHW input x (N, C, H, W) of a 2-D
    problem of one group (symmetric padding), written into `out` (contiguous, that shape):
    rows in the weights' own (c, r, s) order, so that (K, C*R*S) @ columns is the convolution
    with the weights as they lie. Built straight from NCHW (no transpose): each row is runs of
    OW values read at the stride."""
    if not out.flags.c_contiguous or out.shape != (p.c * p.r * p.s, p.n * p.out_h * p.out_w):
        raise ValueError(f"planar_columns: out must be C-contiguous, shape "
                         f"{(p.c * p.r * p.s, p.n * p.out_h * p.out_w)}, got {out.shape}")
    _check_input("planar_columns", p, x, out)
    kernels = _kernels()
    phased = p.stride[1] > 1 and p.out_w >= PHASED_MIN_WIDTH
    kernel = kernels.planar_columns_phased if phased else kernels.planar_columns
    flat = _flat(np.ascontiguousarray(x))
    compiled.parallel(lambda q, first, last: kernel(
        first, last, flat, p.c, p.h, p.w, p.n, p.out_h, p.out_w, p.r, p.s, *p.stride,
        *p.padding, *p.dilation, _flat(out)), p.c * p.r, workers)
    return out
