"""The convolution problem of rank 1, 2 or 3: input (N, C, *size), weights (K, C/groups, *kernel),
one problem per direction (fwd, bwd_data, bwd_weight) with the forward's shapes; conventions and
the FLOP convention are in convbench.problems.base."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from convbench.problems.base import (
    DIRECTIONS,
    KERNEL_LETTERS,
    Sizes,
    Spatial,
    WeightedCounts,
    check_direction,
    check_dtype,
    check_fits,
    check_layout,
    geometry,
    conv_out_size,
    hash_once,
    out_size_line,
    positive_int,
)


@hash_once
@dataclass(frozen=True, init=False)
class ConvProblem(Spatial, WeightedCounts):
    """A convolution: input (N, C, *size), weights (K, C/g, *kernel), output (N, K, *out_size).
    The shapes are the forward's in every direction; `direction` says which pass is computed.

    Built the 2-D way, ``ConvProblem(n, c, h, w, k, r, s, stride, padding, ...)``, or for any
    rank with ``size=`` and ``kernel=``; `padding` takes torch's forms, per-side pairs, or
    `padding_end` beside it (see convbench.problems.base)."""

    family: ClassVar[str] = "conv"
    directions: ClassVar[tuple[str, ...]] = DIRECTIONS

    n: int
    c: int
    k: int
    size: Sizes
    kernel: Sizes
    stride: Sizes
    padding: Sizes
    padding_end: Sizes | None  # None: as the padding before (symmetric)
    dilation: Sizes
    groups: int
    bias: bool
    dtype: str
    direction: str
    layout: str

    def __init__(self, n: int, c: int, h: int | None = None, w: int | None = None,
                 k: int | None = None, r: int | None = None, s: int | None = None,
                 stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1,
                 bias: bool = False, dtype: str = "float32", direction: str = "fwd", *,
                 size: Any = None, kernel: Any = None, padding_end: Any = None,
                 layout: str = "nchw") -> None:
        check_direction(direction)
        for name, value in (("n", n), ("c", c), ("k", k), ("groups", groups)):
            positive_int(name, value)
        spatial = geometry(size, kernel, (h, w, r, s), stride, dilation, padding, padding_end)
        check_dtype(dtype)
        check_layout(layout)
        values = dict(n=n, c=c, k=k, **spatial, groups=groups, bias=bool(bias), dtype=dtype,
                      direction=direction, layout=layout)
        for name, value in values.items():
            object.__setattr__(self, name, value)
        if c % groups:
            raise ValueError(f"groups={groups} must divide the input channels C={c}")
        if k % groups:  # type: ignore[operator]
            raise ValueError(f"groups={groups} must divide the output channels K={k}")
        check_fits(self)

    @property
    def weight_layout(self) -> str:
        return "(K, C/g, " + ", ".join(KERNEL_LETTERS[self.rank]) + ")"

    @property
    def op(self) -> str:
        """conv{rank}d for the forward pass, conv{rank}d_backward for either backward one."""
        name = f"conv{self.rank}d"
        return name if self.direction == "fwd" else f"{name}_backward"

    # --- shapes ---------------------------------------------------------------------------
    @functools.cached_property
    def out_size(self) -> Sizes:  # computed once: the algorithms read it on every call
        return tuple(conv_out_size(i, k, s, p, d, e) for i, k, s, p, d, e in zip(
            self.size, self.kernel, self.stride, self.padding, self.dilation, self.padding_after,
            strict=True))

    @property
    def weight_shape(self) -> Sizes:
        return (self.k, self.c // self.groups, *self.kernel)

    @property
    def output_shape(self) -> Sizes:
        return (self.n, self.k, *self.out_size)

    def size_lines(self) -> list[tuple[str, str]]:
        """Each output size with its formula's numbers."""
        return [(f"output {axis}", out_size_line(i, k, s, p, d, o, after=e))
                for axis, i, k, s, p, e, d, o in self.axes()]

    @property
    def reduction_length(self) -> int:
        """Terms summed per output element: C/groups * R * S (the accumulation length)."""
        return self.c // self.groups * math.prod(self.kernel)

    # --- counts ---------------------------------------------------------------------------
    @property
    def params(self) -> int:
        """Weights plus biases: (C/g * R * S + 1) * K, without the +1 when there is no bias."""
        return (self.reduction_length + int(self.bias)) * self.k

    @functools.cached_property
    def macs(self) -> int:  # computed once: the algorithms' paths ask on every call
        """Multiply-accumulates of the convolution proper: N*K*OH*OW * C/g*R*S."""
        return self.n * self.k * self.pixels * self.reduction_length

    @property
    def bias_flops(self) -> int:
        """One add per output element when there is a bias, counted apart from the MACs: adding
        it (fwd) or summing its gradient (bwd_weight); bwd_data has none."""
        if not self.bias or self.direction == "bwd_data":
            return 0
        return self.n * self.k * self.pixels

    @property
    def im2col_bytes(self) -> int:
        """The unfolded input: C*R*S rows by N*OH*OW columns (vol2col in 3-D)."""
        return self.c * math.prod(self.kernel) * self.n * self.pixels * self.itemsize
