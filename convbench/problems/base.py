"""What every problem shares: dtypes and directions, argument normalisation, the output-size
formulas, and the counts derived from MACs.

Conventions (torch.nn.functional's): NCHW input, weights (K, C/groups, R, S), symmetric padding,
dilation 1 = dense kernel. Output size O = floor((I + 2P - d(K-1) - 1) / S) + 1.

Directions (benchdnn's FWD_D, BWD_D, BWD_W): a problem describes one pass of a layer. `fwd`
computes the output; `bwd_data` the gradient of the input from the output's gradient (and the
weights); `bwd_weight` the gradient of the weights (and of the bias) from the input and the
output's gradient. FLOP convention: each backward direction does exactly the forward's MACs
(the same products, summed along other axes), so bwd_data and bwd_weight each count
2 * MACs; bias adds count in fwd (adding it) and in bwd_weight (summing its gradient), not in
bwd_data. A problem's `op` names the registered operator that runs it: conv2d in fwd,
conv2d_backward in either backward direction; max_pool2d / avg_pool2d and their _backward.
"""

from __future__ import annotations

import math
import operator
from dataclasses import replace
from typing import Any, Literal

from convbench.problems.grammar import format_descriptor
from convbench.units import format_bytes

DTYPES: dict[str, int] = {"float32": 4, "float64": 8}
DIRECTIONS: tuple[str, ...] = ("fwd", "bwd_data", "bwd_weight")

Pair = tuple[int, int]
PaddingArg = int | tuple[int, int] | Literal["same", "valid"]


def as_pair(name: str, value: int | tuple[int, int] | list[int], minimum: int) -> Pair:
    """An int or a pair of ints, each at least `minimum`, as an (h, w) pair."""
    try:  # ints of any kind (numpy's too, as torch accepts), or a pair of them
        items = (value, value) if not hasattr(value, "__len__") else tuple(value)  # type: ignore
        if len(items) != 2 or any(isinstance(v, bool | float) for v in items):
            raise TypeError
        pair = (operator.index(items[0]), operator.index(items[1]))
    except TypeError:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}") from None
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return pair  # type: ignore[return-value]


def dilated_extent(kernel: int, dilation: int) -> int:
    """How many input pixels a dilated kernel spans: d(K-1)+1."""
    return dilation * (kernel - 1) + 1


def conv_out_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """O = floor((I + 2P - d(K-1) - 1) / S) + 1."""
    return (size + 2 * padding - dilated_extent(kernel, dilation)) // stride + 1


def pool_out_size(
    size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool
) -> int:
    """Pooling output size; in ceil mode the last window must start inside the (left-padded) input."""
    span = size + 2 * padding - dilated_extent(kernel, dilation)
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out


def check_direction(value: object, allowed: tuple[str, ...] = DIRECTIONS) -> None:
    if value not in allowed:
        raise ValueError(f"direction must be one of {', '.join(allowed)}, got {value!r}")


def positive_int(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def same_padding(r: int, s: int, stride: Pair, dilation: Pair) -> Pair:
    """'same' padding as torch allows it: stride 1, and (for symmetric padding) odd extents."""
    if stride != (1, 1):
        raise ValueError(f"padding='same' needs stride 1, got stride={stride}")
    pads = []
    for axis, (k, d) in enumerate(((r, dilation[0]), (s, dilation[1]))):
        total = dilated_extent(k, d) - 1
        if total % 2:
            raise ValueError(
                f"padding='same' with a dilated kernel extent of {total + 1} on axis {axis} "
                "needs asymmetric padding, which convbench does not model"
            )
        pads.append(total // 2)
    return (pads[0], pads[1])


def normalised_padding(value: PaddingArg, r: int, s: int, stride: Pair, dilation: Pair) -> Pair:
    if value == "valid":
        return (0, 0)
    if value == "same":
        return same_padding(r, s, stride, dilation)
    if isinstance(value, str):
        raise ValueError(f"padding must be an int, a pair, 'same' or 'valid', got {value!r}")
    return as_pair("padding", value, 0)


def axes_of(p: Any) -> list[tuple[str, tuple[int, int, int, int, int, int]]]:
    """(axis name, (input size, kernel, stride, padding, dilation, output size)) per axis."""
    return list(zip(("height", "width"), zip((p.h, p.w), (p.r, p.s), p.stride, p.padding,
                                            p.dilation, (p.out_h, p.out_w)), strict=True))


def out_size_line(size: int, k: int, s: int, p: int, d: int, out: int,
                   ceil_mode: bool = False) -> str:
    if not ceil_mode:
        return f"floor(({size} + 2*{p} - {d}*({k}-1) - 1) / {s}) + 1 = {out}"
    line = f"ceil(({size} + 2*{p} - {d}*({k}-1) - 1) / {s}) + 1"
    ceiled = -(-(size + 2 * p - d * (k - 1) - 1) // s) + 1
    if ceiled != out:  # torch drops a last window that would start in the right padding
        return f"{line} - 1 = {out} (the last window would start in the padding)"
    return f"{line} = {out}"


def transpose_size_line(size: int, k: int, s: int, p: int, d: int, op: int, out: int) -> str:
    return f"({size}-1)*{s} - 2*{p} + {d}*({k}-1) + {op} + 1 = {out}"


def direction_flops(p: Any) -> list[tuple[str, str]]:
    """The FLOPs of each direction an op has (a convolution: the same MACs in each); none for an
    op with one direction."""
    if len(p.directions) == 1:
        return []
    flops = ", ".join(f"{d} {replace(p, direction=d).flops:,}" for d in p.directions)
    return [("FLOPs by direction", flops)]


class Described:
    """str(problem) is its canonical descriptor (convbench.problems.grammar)."""

    def __str__(self) -> str:
        return format_descriptor(self)


class WeightedCounts(Described):
    """The counts every problem with weights derives alike from its MACs, bias adds and shapes
    (plain and transposed convolution)."""

    dtype: str
    params: int
    macs: int
    bias_flops: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]

    @property
    def flops(self) -> int:
        """2 FLOPs per MAC, plus the bias adds; the same MACs in every direction."""
        return 2 * self.macs + self.bias_flops

    @property
    def itemsize(self) -> int:
        return DTYPES[self.dtype]

    @property
    def bytes_moved(self) -> int:
        """Compulsory traffic: input + weights (+ bias) + output, each once."""
        elements = math.prod(self.input_shape) + math.prod(self.output_shape) + self.params
        return elements * self.itemsize

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOPs per byte moved."""
        return self.flops / self.bytes_moved

    def facts(self) -> list[tuple[str, str]]:
        """The counts `convbench describe` shows, with the arithmetic named."""
        return [
            ("parameters (C/g*R*S + bias) * K", f"{self.params:,}"),
            ("MACs", f"{self.macs:,}"),
            ("FLOPs (2 per MAC + bias adds)", f"{self.flops:,}"),
            *direction_flops(self),
            ("bytes moved (input + weights + output)",
             f"{self.bytes_moved:,} ({format_bytes(self.bytes_moved, 4)})"),
            ("arithmetic intensity", f"{self.intensity:.2f} FLOP/byte"),
            ("im2col workspace (C*R*S x N*OH*OW)", format_bytes(self.im2col_bytes, 4)),
        ]
