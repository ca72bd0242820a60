"""The 2-D pooling problem (max and average), forward and backward."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

from convbench.units import format_bytes

from convbench.problems.base import axes_of, direction_flops, out_size_line, DTYPES, Described, Pair, check_direction, positive_int, as_pair, dilated_extent, pool_out_size


@dataclass(frozen=True)
class PoolProblem(Described):
    """2-D pooling over (N, C, H, W) with an R x S window; stride defaults to the window.
    Directions: fwd, and bwd_data (the input's gradient; pooling has no weights)."""

    family: ClassVar[str] = "pool"
    directions: ClassVar[tuple[str, ...]] = ("fwd", "bwd_data")
    weight_layout: ClassVar[None] = None

    kind: Literal["max", "avg"]
    n: int
    c: int
    h: int
    w: int
    r: int
    s: int
    stride: Pair | None = None
    padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    ceil_mode: bool = False
    count_include_pad: bool = True
    dtype: str = "float32"
    direction: str = "fwd"

    def __post_init__(self) -> None:
        if self.kind not in ("max", "avg"):
            raise ValueError(f"kind must be 'max' or 'avg', got {self.kind!r}")
        check_direction(self.direction, ("fwd", "bwd_data"))
        for name in ("n", "c", "h", "w", "r", "s"):
            positive_int(name, getattr(self, name))
        window = (self.r, self.s)
        stride = window if self.stride is None else as_pair("stride", self.stride, 1)
        object.__setattr__(self, "stride", stride)
        object.__setattr__(self, "padding", as_pair("padding", self.padding, 0))
        object.__setattr__(self, "dilation", as_pair("dilation", self.dilation, 1))
        if self.kind == "avg" and self.dilation != (1, 1):
            raise ValueError(f"average pooling has no dilation, got dilation={self.dilation}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        for i, extent in enumerate(self.window_extent):
            window = (self.r, self.s)[i]
            if self.padding[i] > window // 2:  # torch's rule: at most half the (undilated) window
                raise ValueError(
                    f"padding={self.padding} must be at most half the window {window} "
                    f"(<= {window // 2})"
                )
            if extent > (self.h, self.w)[i] + 2 * self.padding[i]:
                raise ValueError(
                    f"pool window extent {extent} is larger than the padded input "
                    f"{(self.h, self.w)[i]} + 2*{self.padding[i]} "
                    f"(kernel_size={(self.r, self.s)}, dilation={self.dilation})"
                )

    @property
    def op(self) -> str:
        """max_pool2d or avg_pool2d, with _backward in the bwd_data direction."""
        suffix = "_backward" if self.direction == "bwd_data" else ""
        return f"{self.kind}_pool2d{suffix}"

    def size_lines(self) -> list[tuple[str, str]]:
        """Each output size with its formula's numbers (ceil mode's too)."""
        return [(f"output {axis}", out_size_line(*numbers, self.ceil_mode))
                for axis, numbers in axes_of(self)]

    def facts(self) -> list[tuple[str, str]]:
        """The counts `convbench describe` shows."""
        return [
            ("FLOPs (compares or adds)", f"{self.flops:,}"),
            *direction_flops(self),
            ("bytes moved (input + output)",
             f"{self.bytes_moved:,} ({format_bytes(self.bytes_moved, 4)})"),
            ("arithmetic intensity", f"{self.intensity:.3f} FLOP/byte"),
        ]

    @property
    def kernel_extent(self) -> Pair:
        """The window's dilated extent per axis (its receptive field), as a kernel's."""
        return self.window_extent

    @property
    def window_extent(self) -> Pair:
        return (dilated_extent(self.r, self.dilation[0]), dilated_extent(self.s, self.dilation[1]))

    @property
    def out_h(self) -> int:
        sh = self.stride[0]  # type: ignore[index]
        return pool_out_size(self.h, self.r, sh, self.padding[0], self.dilation[0], self.ceil_mode)

    @property
    def out_w(self) -> int:
        sw = self.stride[1]  # type: ignore[index]
        return pool_out_size(self.w, self.s, sw, self.padding[1], self.dilation[1], self.ceil_mode)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.c, self.h, self.w)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.c, self.out_h, self.out_w)

    @property
    def params(self) -> int:
        return 0

    @property
    def flops(self) -> int:
        """fwd: one compare (max) or add (avg) per window element but one, plus one divide per
        output (avg). bwd_data: max finds the argmax again (R*S - 1 compares) and adds the
        gradient once; avg divides once and adds to each of the R*S window elements."""
        outputs = math.prod(self.output_shape)
        if self.direction == "bwd_data":
            return outputs * (self.r * self.s + (1 if self.kind == "avg" else 0))
        return outputs * (self.r * self.s - 1) + (outputs if self.kind == "avg" else 0)

    @property
    def itemsize(self) -> int:
        return DTYPES[self.dtype]

    @property
    def bytes_moved(self) -> int:
        return (math.prod(self.input_shape) + math.prod(self.output_shape)) * self.itemsize

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes_moved
