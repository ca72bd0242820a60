"""The transposed convolution (torch's conv_transpose2d) as a frozen problem, and its shape math.

Output size O = (I - 1)S - 2P + d(K-1) + output_padding + 1. A transposed convolution is the
adjoint of a convolution: its forward pass is the bwd_data pass of the conv2d that maps its output
shape to its input shape with the same weights, so the shape math and the algorithms go through
`ConvTransposeProblem.adjoint`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from convbench.problems.conv import ConvProblem
from convbench.problems.base import (
    DTYPES,
    Pair,
    WeightedCounts,
    positive_int,
    as_pair,
    dilated_extent,
    transpose_size_line,
)


def transpose_out_size(size: int, kernel: int, stride: int, padding: int, dilation: int,
                       output_padding: int) -> int:
    """O = (I - 1)S - 2P + d(K-1) + output_padding + 1: the input size of the adjoint conv."""
    return (size - 1) * stride - 2 * padding + dilated_extent(kernel, dilation) + output_padding


@dataclass(frozen=True)
class ConvTransposeProblem(WeightedCounts):
    """A transposed convolution (torch's conv_transpose2d): input (N, C, H, W), weights
    (C, K/groups, R, S), output (N, K, OH, OW). It is the adjoint of a convolution: the
    bwd_data pass of `adjoint`, the conv2d from (N, K, OH, OW) to (N, C, H, W)."""

    family: ClassVar[str] = "deconv"
    directions: ClassVar[tuple[str, ...]] = ("fwd",)
    weight_layout: ClassVar[str] = "(C, K/g, R, S)"

    op: ClassVar[str] = "conv_transpose2d"
    direction: ClassVar[str] = "fwd"

    n: int
    c: int
    h: int
    w: int
    k: int
    r: int
    s: int
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    output_padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = False
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("n", "c", "h", "w", "k", "r", "s", "groups"):
            positive_int(name, getattr(self, name))
        for name, minimum in (("stride", 1), ("padding", 0), ("output_padding", 0),
                              ("dilation", 1)):
            object.__setattr__(self, name, as_pair(name, getattr(self, name), minimum))
        object.__setattr__(self, "bias", bool(self.bias))
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        for name, channels in (("input", self.c), ("output", self.k)):
            if channels % self.groups:
                raise ValueError(f"groups={self.groups} must divide the {name} channels "
                                 f"{'C' if name == 'input' else 'K'}={channels}")
        for i in (0, 1):  # torch's rule: smaller than the stride or the dilation
            if self.output_padding[i] >= max(self.stride[i], self.dilation[i]):
                raise ValueError(
                    f"output_padding={self.output_padding} must be smaller than either "
                    f"stride={self.stride} or dilation={self.dilation}")
        if min(self.out_h, self.out_w) < 1:
            raise ValueError(f"padding={self.padding} leaves no output: (I-1)S - 2P + d(K-1) "
                             f"+ output_padding + 1 = {(self.out_h, self.out_w)}")

    @property
    def out_h(self) -> int:
        return transpose_out_size(self.h, self.r, self.stride[0], self.padding[0],
                                  self.dilation[0], self.output_padding[0])

    @property
    def out_w(self) -> int:
        return transpose_out_size(self.w, self.s, self.stride[1], self.padding[1],
                                  self.dilation[1], self.output_padding[1])

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.c, self.h, self.w)

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.c, self.k // self.groups, self.r, self.s)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.k, self.out_h, self.out_w)

    @property
    def kernel_extent(self) -> Pair:
        return (dilated_extent(self.r, self.dilation[0]), dilated_extent(self.s, self.dilation[1]))

    def size_lines(self) -> list[tuple[str, str]]:
        """Each output size with its formula's numbers."""
        return [(f"output {axis}", transpose_size_line(size, k, s, p, d, op, out))
                for axis, size, k, s, p, d, op, out
                in zip(("height", "width"), (self.h, self.w), (self.r, self.s), self.stride,
                       self.padding, self.dilation, self.output_padding, (self.out_h, self.out_w))]

    @property
    def adjoint(self) -> ConvProblem:
        """The convolution this transposes, in its bwd_data direction: same weights, stride,
        padding, dilation and groups; its input is our output and its output our input. Where
        output_padding >= stride (allowed while it is below the dilation) the adjoint has
        output_padding // stride more output rows (columns) than we have input: zeros."""
        return ConvProblem(self.n, self.k, self.out_h, self.out_w, self.c, self.r, self.s,
                           self.stride, self.padding, self.dilation, self.groups,
                           dtype=self.dtype, direction="bwd_data")

    @property
    def reduction_length(self) -> int:
        """At most C/groups * R * S terms reach one output element (fewer when stride > 1)."""
        return self.c // self.groups * self.r * self.s

    @property
    def params(self) -> int:
        return self.c * (self.k // self.groups) * self.r * self.s + (self.k if self.bias else 0)

    @property
    def macs(self) -> int:
        """Each input element times each of its K/g*R*S weights."""
        return math.prod(self.input_shape) * (self.k // self.groups) * self.r * self.s

    @property
    def bias_flops(self) -> int:
        return math.prod(self.output_shape) if self.bias else 0

    @property
    def im2col_bytes(self) -> int:
        """The col2im column buffer: K*R*S rows by N*H*W columns (the adjoint's im2col)."""
        return self.adjoint.im2col_bytes
