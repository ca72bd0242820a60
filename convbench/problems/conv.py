"""The 2-D convolution problem: input (N, C, H, W), weights (K, C/groups, R, S), one problem per
direction (fwd, bwd_data, bwd_weight) with the forward's shapes; conventions and the FLOP
convention are in convbench.problems.base."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from convbench.problems.base import DIRECTIONS, DTYPES, axes_of, out_size_line, Pair, WeightedCounts, check_direction, normalised_padding, positive_int, as_pair, conv_out_size, dilated_extent


@dataclass(frozen=True)
class ConvProblem(WeightedCounts):
    """A 2-D convolution: input (N, C, H, W), weights (K, C/groups, R, S), output (N, K, OH, OW).
    The shapes are the forward's in every direction; `direction` says which pass is computed."""

    family: ClassVar[str] = "conv"
    directions: ClassVar[tuple[str, ...]] = DIRECTIONS
    weight_layout: ClassVar[str] = "(K, C/g, R, S)"

    n: int
    c: int
    h: int
    w: int
    k: int
    r: int
    s: int
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = False
    dtype: str = "float32"
    direction: str = "fwd"

    def __post_init__(self) -> None:
        check_direction(self.direction)
        for name in ("n", "c", "h", "w", "k", "r", "s", "groups"):
            positive_int(name, getattr(self, name))
        stride = as_pair("stride", self.stride, 1)
        dilation = as_pair("dilation", self.dilation, 1)
        padding = normalised_padding(self.padding, self.r, self.s, stride, dilation)
        object.__setattr__(self, "stride", stride)
        object.__setattr__(self, "dilation", dilation)
        object.__setattr__(self, "padding", padding)
        object.__setattr__(self, "bias", bool(self.bias))
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        if self.c % self.groups:
            raise ValueError(f"groups={self.groups} must divide the input channels C={self.c}")
        if self.k % self.groups:
            raise ValueError(f"groups={self.groups} must divide the output channels K={self.k}")
        for axis, size, kernel in (("height", self.h, self.r), ("width", self.w, self.s)):
            i = 0 if axis == "height" else 1
            extent = dilated_extent(kernel, dilation[i])
            if extent > size + 2 * padding[i]:
                raise ValueError(
                    f"kernel {axis} {kernel} (dilated extent {extent}) is larger than the "
                    f"padded input {axis} {size} + 2*{padding[i]}"
                )

    @property
    def op(self) -> str:
        """conv2d for the forward pass, conv2d_backward for either backward direction."""
        return "conv2d" if self.direction == "fwd" else "conv2d_backward"

    # --- shapes ---------------------------------------------------------------------------
    @property
    def out_h(self) -> int:
        return conv_out_size(self.h, self.r, self.stride[0], self.padding[0], self.dilation[0])

    @property
    def out_w(self) -> int:
        return conv_out_size(self.w, self.s, self.stride[1], self.padding[1], self.dilation[1])

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.c, self.h, self.w)

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.k, self.c // self.groups, self.r, self.s)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.k, self.out_h, self.out_w)

    def size_lines(self) -> list[tuple[str, str]]:
        """Each output size with its formula's numbers."""
        return [(f"output {axis}", out_size_line(*numbers)) for axis, numbers in axes_of(self)]

    @property
    def kernel_extent(self) -> Pair:
        """Dilated kernel extent d(K-1)+1 per axis: the receptive field of one layer."""
        return (dilated_extent(self.r, self.dilation[0]), dilated_extent(self.s, self.dilation[1]))

    @property
    def reduction_length(self) -> int:
        """Terms summed per output element: C/groups * R * S (the accumulation length)."""
        return self.c // self.groups * self.r * self.s

    # --- counts ---------------------------------------------------------------------------
    @property
    def params(self) -> int:
        """Weights plus biases: (C/g * R * S + 1) * K, without the +1 when there is no bias."""
        return (self.reduction_length + int(self.bias)) * self.k

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the convolution proper: N*K*OH*OW * C/g*R*S."""
        return self.n * self.k * self.out_h * self.out_w * self.reduction_length

    @property
    def bias_flops(self) -> int:
        """One add per output element when there is a bias, counted apart from the MACs: adding
        it (fwd) or summing its gradient (bwd_weight); bwd_data has none."""
        if not self.bias or self.direction == "bwd_data":
            return 0
        return self.n * self.k * self.out_h * self.out_w

    @property
    def im2col_bytes(self) -> int:
        """The unfolded input: C*R*S rows by N*OH*OW columns."""
        return self.c * self.r * self.s * self.n * self.out_h * self.out_w * self.itemsize
