"""TensorFlow's and ONNX's padding as torch's per-side form, for convolution and pooling.

TensorFlow's ``padding='SAME'`` gives out = ceil(in / stride) and pads the total
max((out - 1) * stride + d(k - 1) + 1 - in, 0), the odd pixel after (bottom, right);
``'VALID'`` pads nothing, out = ceil((in - d(k - 1)) / stride). ONNX's ``auto_pad`` says the
same with SAME_UPPER (the odd pixel after), SAME_LOWER (before) and VALID; its ``pads`` list is
[x1_begin, x2_begin, ..., x1_end, x2_end]. Each function returns ((before, after), ...) per
spatial axis, which every convbench function and problem takes as `padding`:

    >>> tf_padding("SAME", (224, 224), 3, stride=2)
    ((0, 1), (0, 1))
    >>> convbench.conv2d(x, w, stride=2, padding=tf_padding("SAME", x.shape[2:], 3, 2))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from convbench.problems import as_tuple, dilated_extent

Pads = tuple[tuple[int, int], ...]


def _sizes(input_size: Any) -> tuple[int, ...]:
    try:
        rank = len(input_size)
    except TypeError:
        raise ValueError(f"input_size must be the spatial sizes (1 to 3 ints), got "
                         f"{input_size!r}") from None
    if rank not in (1, 2, 3):
        raise ValueError(f"input_size must be 1 to 3 ints, got {input_size!r}")
    return as_tuple("input_size", input_size, rank, 1)


def _same(sizes: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...],
          dilation: tuple[int, ...], odd_after: bool) -> Pads:
    pads = []
    for i, k, s, d in zip(sizes, kernel, stride, dilation, strict=True):
        out = -(-i // s)
        total = max((out - 1) * s + dilated_extent(k, d) - i, 0)
        small, large = total // 2, total - total // 2
        pads.append((small, large) if odd_after else (large, small))
    return tuple(pads)


def tf_padding(mode: str, input_size: Sequence[int], kernel_size: Any, stride: Any = 1,
               dilation: Any = 1) -> Pads:
    """TensorFlow's padding='SAME' or 'VALID' for these spatial sizes, as (before, after) per
    axis; the same for convolution and pooling."""
    sizes = _sizes(input_size)
    rank = len(sizes)
    kernel = as_tuple("kernel_size", kernel_size, rank, 1)
    strides = as_tuple("stride", stride, rank, 1)
    dilations = as_tuple("dilation", dilation, rank, 1)
    if mode.upper() == "VALID":
        return ((0, 0),) * rank
    if mode.upper() != "SAME":
        raise ValueError(f"mode must be 'SAME' or 'VALID', got {mode!r}")
    return _same(sizes, kernel, strides, dilations, odd_after=True)


def onnx_padding(input_size: Sequence[int], kernel_size: Any, stride: Any = 1,
                 dilation: Any = 1, pads: Sequence[int] | None = None,
                 auto_pad: str = "NOTSET") -> Pads:
    """ONNX's Conv/Pool padding (`auto_pad` NOTSET with `pads`, SAME_UPPER, SAME_LOWER or
    VALID) for these spatial sizes, as (before, after) per axis."""
    sizes = _sizes(input_size)
    rank = len(sizes)
    kernel = as_tuple("kernel_size", kernel_size, rank, 1)
    strides = as_tuple("stride", stride, rank, 1)
    dilations = as_tuple("dilation", dilation, rank, 1)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return _same(sizes, kernel, strides, dilations, odd_after=auto_pad == "SAME_UPPER")
    if auto_pad == "VALID":
        return ((0, 0),) * rank
    if auto_pad != "NOTSET":
        raise ValueError(f"auto_pad must be NOTSET, SAME_UPPER, SAME_LOWER or VALID, got "
                         f"{auto_pad!r}")
    if pads is None:
        return ((0, 0),) * rank
    values = as_tuple("pads", pads, 2 * rank, 0)
    return tuple(zip(values[:rank], values[rank:], strict=True))
