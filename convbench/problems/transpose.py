"""The transposed convolution (torch's conv_transpose2d) as a frozen problem, and its shape math.

Output size O = (I - 1)S - 2P + d(K-1) + output_padding + 1. A transposed convolution is the
adjoint of a convolution: its forward pass is the bwd_data pass of the conv2d that maps its output
shape to its input shape with the same weights, so the shape math and the algorithms go through
`ConvTransposeProblem.adjoint`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from convbench.problems.conv import ConvProblem
from convbench.problems.base import (
    KERNEL_LETTERS,
    Sizes,
    Spatial,
    WeightedCounts,
    as_tuple,
    check_dtype,
    check_layout,
    geometry,
    dilated_extent,
    hash_once,
    positive_int,
    transpose_size_line,
)


def transpose_out_size(size: int, kernel: int, stride: int, padding: int, dilation: int,
                       output_padding: int, padding_end: int | None = None) -> int:
    """O = (I - 1)S - P_before - P_after + d(K-1) + output_padding + 1 (2P when symmetric):
    the input size of the adjoint conv."""
    after = padding if padding_end is None else padding_end
    return ((size - 1) * stride - padding - after + dilated_extent(kernel, dilation)
            + output_padding)


@hash_once
@dataclass(frozen=True, init=False)
class ConvTransposeProblem(Spatial, WeightedCounts):
    """A transposed convolution (torch's conv_transpose{1,2,3}d): input (N, C, *size), weights
    (C, K/groups, *kernel), output (N, K, *out_size). It is the adjoint of a convolution: the
    bwd_data pass of `adjoint`, the convolution from (N, K, *out_size) to (N, C, *size).
    Padding before and after an axis may differ (ONNX's ConvTranspose pads): it crops the
    output."""

    family: ClassVar[str] = "deconv"
    directions: ClassVar[tuple[str, ...]] = ("fwd",)
    direction: ClassVar[str] = "fwd"

    n: int
    c: int
    k: int
    size: Sizes
    kernel: Sizes
    stride: Sizes
    padding: Sizes
    padding_end: Sizes | None  # None: as the padding before (symmetric)
    output_padding: Sizes
    dilation: Sizes
    groups: int
    bias: bool
    dtype: str
    layout: str

    def __init__(self, n: int, c: int, h: int | None = None, w: int | None = None,
                 k: int | None = None, r: int | None = None, s: int | None = None,
                 stride: Any = 1, padding: Any = 0, output_padding: Any = 0, dilation: Any = 1,
                 groups: int = 1, bias: bool = False, dtype: str = "float32", *,
                 size: Any = None, kernel: Any = None, padding_end: Any = None,
                 layout: str = "nchw") -> None:
        for name, value in (("n", n), ("c", c), ("k", k), ("groups", groups)):
            positive_int(name, value)
        spatial = geometry(size, kernel, (h, w, r, s), stride, dilation, padding, padding_end,
                           strings_refused="a transposed convolution's padding must be ints or "
                           "per-side pairs, got {padding!r} (torch refuses strings here too)")
        output_padding = as_tuple("output_padding", output_padding, len(spatial["size"]), 0)
        check_dtype(dtype)
        check_layout(layout)
        values = dict(n=n, c=c, k=k, **spatial, output_padding=output_padding, groups=groups,
                      bias=bool(bias), dtype=dtype, layout=layout)
        for name, value in values.items():
            object.__setattr__(self, name, value)
        for name, channels in (("input", c), ("output", k)):
            if channels % groups:  # type: ignore[operator]
                raise ValueError(f"groups={groups} must divide the {name} channels "
                                 f"{'C' if name == 'input' else 'K'}={channels}")
        for o, s_, d in zip(output_padding, self.stride, self.dilation, strict=True):
            if o >= max(s_, d):  # torch's rule: smaller than the stride or the dilation
                raise ValueError(
                    f"output_padding={output_padding} must be smaller than either "
                    f"stride={self.stride} or dilation={self.dilation}")
        if min(self.out_size) < 1:
            before, after = self.padding, self.padding_after
            raise ValueError(f"padding={before if before == after else (before, after)} leaves "
                             f"no output: (I-1)S - 2P + d(K-1) + output_padding + 1 = "
                             f"{self.out_size}")

    @property
    def op(self) -> str:
        return f"conv_transpose{self.rank}d"

    @property
    def weight_layout(self) -> str:
        return "(C, K/g, " + ", ".join(KERNEL_LETTERS[self.rank]) + ")"

    @functools.cached_property
    def out_size(self) -> Sizes:  # computed once: the algorithms read it on every call
        return tuple(transpose_out_size(i, k, s, p, d, o, e) for i, k, s, p, d, o, e in zip(
            self.size, self.kernel, self.stride, self.padding, self.dilation,
            self.output_padding, self.padding_after, strict=True))

    @property
    def weight_shape(self) -> Sizes:
        return (self.c, self.k // self.groups, *self.kernel)

    @property
    def output_shape(self) -> Sizes:
        return (self.n, self.k, *self.out_size)

    def size_lines(self) -> list[tuple[str, str]]:
        """Each output size with its formula's numbers."""
        return [(f"output {axis}", transpose_size_line(i, k, s, p, d, op, o, after=e))
                for (axis, i, k, s, p, e, d, o), op in zip(self.axes(), self.output_padding,
                                                           strict=True)]

    @property
    def adjoint(self) -> ConvProblem:
        """The convolution this transposes, in its bwd_data direction: same weights, stride,
        padding, dilation and groups; its input is our output and its output our input. Where
        output_padding >= stride (allowed while it is below the dilation) the adjoint has
        output_padding // stride more output rows (columns) than we have input: zeros."""
        return ConvProblem(self.n, self.k, k=self.c, size=self.out_size, kernel=self.kernel,
                           stride=self.stride, padding=self.padding,
                           padding_end=self.padding_after, dilation=self.dilation,
                           groups=self.groups, dtype=self.dtype, direction="bwd_data",
                           layout=self.layout)

    @property
    def reduction_length(self) -> int:
        """At most C/groups * R * S terms reach one output element (fewer when stride > 1)."""
        return self.c // self.groups * math.prod(self.kernel)

    @property
    def params(self) -> int:
        return self.c * (self.k // self.groups) * math.prod(self.kernel) + (
            self.k if self.bias else 0)

    @property
    def macs(self) -> int:
        """Each input element times each of its K/g*R*S weights."""
        return math.prod(self.input_shape) * (self.k // self.groups) * math.prod(self.kernel)

    @property
    def bias_flops(self) -> int:
        return math.prod(self.output_shape) if self.bias else 0

    @property
    def im2col_bytes(self) -> int:
        """The col2im column buffer: K*R*S rows by N*H*W columns (the adjoint's im2col)."""
        return self.adjoint.im2col_bytes
