"""The one windowing helper that convolution and pooling share, forward and backward: pad, then
view the windows (a gather); `tap` gives one kernel tap's pixels as a writable view (a scatter)."""

from __future__ import annotations

from convbench.problems import ConvProblem, PoolProblem
from convbench.backends.xp import Array, array_strides, device, namespace, pad_constant, strided


def pad(x: Array, padding: tuple[int, int], value: float = 0.0) -> Array:
    """Zero- (or `value`-) pad the two spatial axes of an NCHW array; no copy when padding is 0.
    Any array-API library (numpy, cupy, torch)."""
    ph, pw = padding
    if ph == pw == 0:
        return x
    xp = namespace(x)
    n, c, h, w = x.shape
    out = xp.full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype, device=device(x))
    out[:, :, ph : ph + h, pw : pw + w] = x
    return out


def windows(x_padded: Array, p: ConvProblem | PoolProblem) -> Array:
    """An (N, C, R, S, OH, OW) view: element [n, c, r, s, i, j] is the input pixel that kernel
    tap (r, s) of output (i, j) reads. No copy where the library has strides (numpy, cupy,
    torch); dilation and stride are strides."""
    n, c, _, _ = x_padded.shape
    sn, sc, sh, sw = array_strides(x_padded)
    (dh, dw), (th, tw) = p.dilation, p.stride  # type: ignore[misc]
    return strided(x_padded, (n, c, p.r, p.s, p.out_h, p.out_w),
                   (sn, sc, dh * sh, dw * sw, th * sh, tw * sw))


def padded_size(p: ConvProblem | PoolProblem) -> tuple[int, int]:
    """Height and width that hold every window: the padded input, and in pooling's ceil mode as
    far as the last window reaches past the right padding."""
    stride: tuple[int, int] = p.stride  # type: ignore[assignment]
    sizes = []
    for i, (size, out) in enumerate(((p.h, p.out_h), (p.w, p.out_w))):
        extent = p.dilation[i] * ((p.r, p.s)[i] - 1) + 1
        padded = size + p.padding[i] + p.padding_after[i]
        sizes.append(max(padded, (out - 1) * stride[i] + extent))
    return sizes[0], sizes[1]


def pad_for_windows(x: Array, p: ConvProblem | PoolProblem, value: float = 0.0) -> Array:
    """`pad`, with the bottom and right extended where a window reaches past the padding."""
    (ph, pw), (hp, wp) = p.padding, padded_size(p)
    bottom, right = hp - p.h - ph, wp - p.w - pw
    if (bottom, right) == (ph, pw):  # (symmetric padding, no window past it)
        return pad(x, p.padding, value)
    return pad_constant(x, ((0, 0), (0, 0), (ph, bottom), (pw, right)), value)


def tap(x_padded: Array, p: ConvProblem | PoolProblem, r: int, s: int) -> Array:
    """A writable (N, C, OH, OW) view: the pixels kernel tap (r, s) reads, one per output. The
    same elements as windows(x_padded, p)[:, :, r, s], by plain slicing, so a backward pass can
    scatter-add into it (one tap's pixels never overlap each other)."""
    (dh, dw), (sh, sw) = p.dilation, p.stride  # type: ignore[misc]
    rows = slice(r * dh, r * dh + (p.out_h - 1) * sh + 1, sh)
    cols = slice(s * dw, s * dw + (p.out_w - 1) * sw + 1, sw)
    return x_padded[:, :, rows, cols]


def crop(x_padded: Array, p: ConvProblem | PoolProblem) -> Array:
    """The input-sized (N, C, H, W) part of a padded array (undoes `pad_for_windows`)."""
    ph, pw = p.padding
    return x_padded[:, :, ph : ph + p.h, pw : pw + p.w]


def add_bias(y: Array, bias: Array | None) -> Array:
    """y (N, K, *out) += bias (K,), in place."""
    if bias is not None:
        y += namespace(y).reshape(bias, (1, -1, *(1,) * (y.ndim - 2)))
    return y


def tap_index(p: ConvProblem | PoolProblem, r: int, s: int) -> tuple[object, slice, slice]:
    """The index of `tap`'s pixels over the last two axes, (..., rows, cols): a backward pass
    scatter-adds one tap as x_padded[tap_index(p, r, s)] += ..., which every library supports
    (no writable views needed), whatever axes precede the spatial ones."""
    (dh, dw), (sh, sw) = p.dilation, p.stride  # type: ignore[misc]
    rows = slice(r * dh, r * dh + (p.out_h - 1) * sh + 1, sh)
    cols = slice(s * dw, s * dw + (p.out_w - 1) * sw + 1, sw)
    return ..., rows, cols
