"""The one windowing helper that convolution and pooling share, forward and backward: pad, then
view the windows (a gather); `tap` gives one kernel tap's pixels as a writable view (a scatter)."""

from __future__ import annotations

from typing import Any

from convbench.problems import ConvProblem, PoolProblem
from convbench.backends.xp import Array, array_strides, device, namespace, pad_constant, strided


def pad(x: Array, padding: tuple[int, ...], value: float = 0.0) -> Array:
    """Zero- (or `value`-) pad the spatial axes of an (N, C, *spatial) array, `padding[i]` on
    both sides of axis i; no copy when padding is 0. Any array-API library (numpy, cupy,
    torch)."""
    if not any(padding):
        return x
    xp = namespace(x)
    if len(padding) == 2:  # 2-D, the common case, spelled out: tiny problems feel every step
        n, c, h, w = x.shape
        ph, pw = padding
        out = xp.full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype, device=device(x))
        out[:, :, ph : ph + h, pw : pw + w] = x
        return out
    n, c, *size = x.shape
    padded = tuple(s + 2 * q for s, q in zip(size, padding, strict=True))
    out = xp.full((n, c, *padded), value, dtype=x.dtype, device=device(x))
    out[(slice(None), slice(None), *(slice(q, q + s) for s, q in zip(size, padding)))] = x
    return out


def windows(x_padded: Array, p: ConvProblem | PoolProblem) -> Array:
    """An (N, C, *kernel, *out) view, (N, C, R, S, OH, OW) in 2-D: element [n, c, r, s, i, j]
    is the input pixel that kernel tap (r, s) of output (i, j) reads. No copy where the library
    has strides (numpy, cupy, torch), whatever x_padded's memory layout; dilation and stride
    are strides."""
    if len(p.kernel) == 2:  # 2-D, spelled out (see pad)
        n, c, _, _ = x_padded.shape
        sn, sc, sh, sw = array_strides(x_padded)
        (dh, dw), (th, tw) = p.dilation, p.stride
        return strided(x_padded, (n, c, *p.kernel, *p.out_size),
                       (sn, sc, dh * sh, dw * sw, th * sh, tw * sw))
    n, c, *_ = x_padded.shape
    sn, sc, *spatial = array_strides(x_padded)
    taps = (d * t for d, t in zip(p.dilation, spatial, strict=True))
    steps = (s * t for s, t in zip(p.stride, spatial, strict=True))
    return strided(x_padded, (n, c, *p.kernel, *p.out_size), (sn, sc, *taps, *steps))


def padded_size(p: ConvProblem | PoolProblem) -> tuple[int, ...]:
    """The spatial sizes that hold every window: the padded input, and in pooling's ceil mode
    as far as the last window reaches past the padding after."""
    return tuple(max(size + before + after, (out - 1) * stride + extent)
                 for (_, size, _, stride, before, after, _, out), extent
                 in zip(p.axes(), p.kernel_extent, strict=True))


def pad_for_windows(x: Array, p: ConvProblem | PoolProblem, value: float = 0.0) -> Array:
    """`pad`, with each axis's end extended where a window reaches past the padding, and the
    padding after an axis as the problem has it; in the problem's memory layout (channels last
    stays channels last: no channels-first copy). No copy without padding."""
    widths = tuple((before, full - size - before) for size, before, full
                   in zip(p.size, p.padding, padded_size(p), strict=True))
    if not p.channels_last:
        if all(before == after for before, after in widths):  # (no window past the padding)
            return pad(x, p.padding, value)
        return pad_constant(x, ((0, 0), (0, 0), *widths), value)
    if not any(before or after for before, after in widths):
        return x
    xp, last = namespace(x), x.ndim - 1
    moved = xp.permute_dims(x, (0, *range(2, x.ndim), 1))  # (N, *spatial, C): contiguous
    padded = pad_constant(moved, ((0, 0), *widths, (0, 0)), value)
    return xp.permute_dims(padded, (0, last, *range(1, last)))


def tap(x_padded: Array, p: ConvProblem | PoolProblem, r: int, s: int) -> Array:
    """A writable (N, C, OH, OW) view: the pixels kernel tap (r, s) reads, one per output. The
    same elements as windows(x_padded, p)[:, :, r, s], by plain slicing, so a backward pass can
    scatter-add into it (one tap's pixels never overlap each other)."""
    (dh, dw), (sh, sw) = p.dilation, p.stride  # type: ignore[misc]
    rows = slice(r * dh, r * dh + (p.out_h - 1) * sh + 1, sh)
    cols = slice(s * dw, s * dw + (p.out_w - 1) * sw + 1, sw)
    return x_padded[:, :, rows, cols]


def crop(x_padded: Array, p: ConvProblem | PoolProblem) -> Array:
    """The input-sized (N, C, *size) part of a padded array (undoes `pad_for_windows`)."""
    middle = (slice(before, before + size) for before, size in zip(p.padding, p.size,
                                                                      strict=True))
    return x_padded[(slice(None), slice(None), *middle)]


def add_bias(y: Array, bias: Array | None, xp: Any = None) -> Array:
    """y (N, K, *out) += bias (K,), in place (`xp`: y's namespace, where the caller has it)."""
    if bias is not None:
        y += (xp or namespace(y)).reshape(bias, (1, -1, *(1,) * (y.ndim - 2)))
    return y


def tap_index(p: ConvProblem | PoolProblem, *taps: int) -> tuple[object, ...]:
    """The index of `tap`'s pixels over the last spatial axes, (..., rows, cols) in 2-D: a
    backward pass scatter-adds one kernel tap (one int per axis) as
    x_padded[tap_index(p, r, s)] += ..., which every library supports (no writable views
    needed), whatever axes precede the spatial ones."""
    return (..., *(slice(t * d, t * d + (out - 1) * s + 1, s) for t, d, s, out
                   in zip(taps, p.dilation, p.stride, p.out_size, strict=True)))
