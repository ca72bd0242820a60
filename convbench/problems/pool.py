"""The pooling problem (max and average) of rank 1, 2 or 3, forward and backward."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from convbench.problems.base import (
    Described,
    DTYPES,
    Sizes,
    Spatial,
    check_direction,
    check_dtype,
    check_fits,
    check_layout,
    geometry,
    direction_flops,
    hash_once,
    out_size_line,
    pool_out_size,
    positive_int,
)
from convbench.units import format_bytes


@hash_once
@dataclass(frozen=True, init=False)
class PoolProblem(Spatial, Described):
    """Pooling over (N, C, *size) with a `kernel`-sized window; stride defaults to the window.
    Directions: fwd, and bwd_data (the input's gradient; pooling has no weights).

    Built the 2-D way, ``PoolProblem(kind, n, c, h, w, r, s, stride, padding, ...)``, or for
    any rank with ``size=`` and ``kernel=``. Padding may differ before and after an axis
    (TensorFlow's SAME), each side at most half the window (torch's rule).
    `divisor_override` replaces average pooling's divisor (torch's argument)."""

    family: ClassVar[str] = "pool"
    directions: ClassVar[tuple[str, ...]] = ("fwd", "bwd_data")
    weight_layout: ClassVar[None] = None

    kind: Literal["max", "avg"]
    n: int
    c: int
    size: Sizes
    kernel: Sizes
    stride: Sizes
    padding: Sizes
    padding_end: Sizes | None  # None: as the padding before (symmetric)
    dilation: Sizes
    ceil_mode: bool
    count_include_pad: bool
    divisor_override: int | None
    dtype: str
    direction: str
    layout: str

    def __init__(self, kind: str, n: int, c: int, h: int | None = None, w: int | None = None,
                 r: int | None = None, s: int | None = None, stride: Any = None,
                 padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False,
                 count_include_pad: bool = True, dtype: str = "float32",
                 direction: str = "fwd", *, size: Any = None, kernel: Any = None,
                 padding_end: Any = None, divisor_override: int | None = None,
                 layout: str = "nchw") -> None:
        if kind not in ("max", "avg"):
            raise ValueError(f"kind must be 'max' or 'avg', got {kind!r}")
        check_direction(direction, ("fwd", "bwd_data"))
        positive_int("n", n)
        positive_int("c", c)
        spatial = geometry(size, kernel, (h, w, r, s), stride, dilation, padding, padding_end,
                           window_stride=True,
                           strings_refused="pooling padding must be ints or per-side pairs, got "
                           "{padding!r} (convbench.tf_padding turns SAME/VALID into pairs)")
        check_dtype(dtype)
        check_layout(layout)
        if divisor_override is not None:
            if kind != "avg":
                raise ValueError(f"divisor_override is average pooling's, got it for {kind}")
            positive_int("divisor_override", divisor_override)
        values = dict(kind=kind, n=n, c=c, **spatial, ceil_mode=bool(ceil_mode), count_include_pad=bool(count_include_pad),
                      divisor_override=divisor_override, dtype=dtype, direction=direction,
                      layout=layout)
        for name, value in values.items():
            object.__setattr__(self, name, value)
        if kind == "avg" and any(d != 1 for d in self.dilation):
            raise ValueError(f"average pooling has no dilation, got dilation={self.dilation}")
        before, after, kernel = self.padding, self.padding_after, self.kernel
        for side in (before, after):
            if any(p > k // 2 for p, k in zip(side, kernel, strict=True)):
                shown = before if before == after else (before, after)
                raise ValueError(f"padding={shown} must be at most half the window {kernel} "
                                 f"(<= {tuple(k // 2 for k in kernel)})")
        check_fits(self, "pool window")

    @property
    def op(self) -> str:
        """max_pool{rank}d or avg_pool{rank}d, with _backward in the bwd_data direction."""
        suffix = "_backward" if self.direction == "bwd_data" else ""
        return f"{self.kind}_pool{self.rank}d{suffix}"

    def size_lines(self) -> list[tuple[str, str]]:
        """Each output size with its formula's numbers (ceil mode's too)."""
        return [(f"output {axis}", out_size_line(i, k, s, p, d, o, self.ceil_mode, after=e))
                for axis, i, k, s, p, e, d, o in self.axes()]

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
    def window_extent(self) -> Sizes:
        return self.kernel_extent

    @functools.cached_property
    def out_size(self) -> Sizes:  # computed once: the algorithms read it on every call
        return tuple(pool_out_size(i, k, s, p, d, self.ceil_mode, e) for i, k, s, p, d, e in zip(
            self.size, self.kernel, self.stride, self.padding, self.dilation, self.padding_after,
            strict=True))

    @property
    def output_shape(self) -> Sizes:
        return (self.n, self.c, *self.out_size)

    @property
    def params(self) -> int:
        return 0

    @property
    def window(self) -> int:
        """Elements in one window: R*S."""
        return math.prod(self.kernel)

    @property
    def flops(self) -> int:
        """fwd: one compare (max) or add (avg) per window element but one, plus one divide per
        output (avg). bwd_data: max finds the argmax again (R*S - 1 compares) and adds the
        gradient once; avg divides once and adds to each of the R*S window elements."""
        outputs = math.prod(self.output_shape)
        if self.direction == "bwd_data":
            return outputs * (self.window + (1 if self.kind == "avg" else 0))
        return outputs * (self.window - 1) + (outputs if self.kind == "avg" else 0)

    @property
    def itemsize(self) -> int:
        return DTYPES[self.dtype]

    @property
    def bytes_moved(self) -> int:
        return (math.prod(self.input_shape) + math.prod(self.output_shape)) * self.itemsize

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes_moved
