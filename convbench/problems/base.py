"""What every problem shares: dtypes, directions and layouts, the spatial geometry of ranks 1-3
(sizes, kernel, stride, padding before and after each axis, dilation), argument normalisation,
the output-size formulas, and the counts derived from MACs.

Conventions (torch.nn.functional's): input (N, C, *spatial) with 1-3 spatial axes (W; H, W;
D, H, W), weights (K, C/groups, *kernel), dilation 1 = dense kernel. Padding is given per side:
`padding` before each axis (top, left, front) and `padding_end` after it (bottom, right, back);
torch's symmetric padding has both equal. Output size
O = floor((I + P_before + P_after - d(K-1) - 1) / S) + 1, which is the familiar
floor((I + 2P - d(K-1) - 1) / S) + 1 when the padding is symmetric.

Layout is where channels sit in memory: "nchw" (channels first, torch's contiguous format) or
"nhwc" (channels last: NWC, NHWC or NDHWC by rank; torch's channels_last). Shapes are always
written channels first, as torch writes them, whatever the layout.

Directions (benchdnn's FWD_D, BWD_D, BWD_W): a problem describes one pass of a layer. `fwd`
computes the output; `bwd_data` the gradient of the input from the output's gradient (and the
weights); `bwd_weight` the gradient of the weights (and of the bias) from the input and the
output's gradient. FLOP convention: each backward direction does exactly the forward's MACs
(the same products, summed along other axes), so bwd_data and bwd_weight each count
2 * MACs; bias adds count in fwd (adding it) and in bwd_weight (summing its gradient), not in
bwd_data. A problem's `op` names the registered operator that runs it: conv{rank}d in fwd,
conv{rank}d_backward in either backward direction; max_pool{rank}d / avg_pool{rank}d and their
_backward.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Sequence
import dataclasses
from dataclasses import replace
from typing import Any, Literal

from convbench.problems.grammar import format_descriptor
from convbench.units import format_bytes

DTYPES: dict[str, int] = {"float32": 4, "float64": 8}
DIRECTIONS: tuple[str, ...] = ("fwd", "bwd_data", "bwd_weight")
LAYOUTS: tuple[str, ...] = ("nchw", "nhwc")
RANKS: tuple[int, ...] = (1, 2, 3)
AXIS_NAMES: dict[int, tuple[str, ...]] = {1: ("width",), 2: ("height", "width"),
                                          3: ("depth", "height", "width")}
SPATIAL_LETTERS: dict[int, str] = {1: "W", 2: "HW", 3: "DHW"}
KERNEL_LETTERS: dict[int, str] = {1: "S", 2: "RS", 3: "TRS"}

Sizes = tuple[int, ...]
Pair = Sizes  # one int per spatial axis (two in 2-D), kept under its old name
PaddingArg = (int | Sequence[int] | Sequence[Sequence[int]] | Literal["same", "valid"])


def as_tuple(name: str, value: object, rank: int, minimum: int) -> Sizes:
    """An int (for every axis) or `rank` ints, each at least `minimum`."""
    try:  # ints of any kind (numpy's too, as torch accepts), or a sequence of them
        items = (value,) * rank if not hasattr(value, "__len__") else tuple(value)  # type: ignore
        if len(items) != rank or any(isinstance(v, bool | float) for v in items):
            raise TypeError
        sizes = tuple(operator.index(v) for v in items)
    except TypeError:
        shape = "an int or a pair of ints" if rank == 2 else f"an int or {rank} ints"
        raise ValueError(f"{name} must be {shape}, got {value!r}") from None
    if min(sizes) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return sizes


def as_pair(name: str, value: object, minimum: int) -> Pair:
    """An int or a pair of ints, each at least `minimum`, as an (h, w) pair."""
    return as_tuple(name, value, 2, minimum)


def dilated_extent(kernel: int, dilation: int) -> int:
    """How many input pixels a dilated kernel spans: d(K-1)+1."""
    return dilation * (kernel - 1) + 1


def conv_out_size(size: int, kernel: int, stride: int, padding: int, dilation: int,
                  padding_end: int | None = None) -> int:
    """O = floor((I + P_before + P_after - d(K-1) - 1) / S) + 1 (P_after = P_before unless
    given)."""
    after = padding if padding_end is None else padding_end
    return (size + padding + after - dilated_extent(kernel, dilation)) // stride + 1


def pool_out_size(size: int, kernel: int, stride: int, padding: int, dilation: int,
                  ceil_mode: bool, padding_end: int | None = None) -> int:
    """Pooling output size; in ceil mode the last window must start inside the (left-padded)
    input."""
    after = padding if padding_end is None else padding_end
    span = size + padding + after - dilated_extent(kernel, dilation)
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out


def check_direction(value: object, allowed: tuple[str, ...] = DIRECTIONS) -> None:
    if value not in allowed:
        raise ValueError(f"direction must be one of {', '.join(allowed)}, got {value!r}")


def check_dtype(value: object) -> None:
    if value not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {value!r}")


def check_layout(value: object) -> None:
    if value not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)} (channels first or last), "
                         f"got {value!r}")


def positive_int(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def spatial_sizes(name: str, size: object, two_d: tuple[object, object]) -> Sizes:
    """The spatial sizes from `size` (1-3 ints) or from the 2-D pair (h, w) / (r, s)."""
    if size is None:
        fields = ("h", "w") if name == "size" else ("r", "s")
        if any(v is None for v in two_d):
            raise ValueError(f"give {name} (1 to 3 ints), or both 2-D fields "
                             f"{' and '.join(fields)}")
        return (positive_int(fields[0], two_d[0]), positive_int(fields[1], two_d[1]))
    elif any(v is not None for v in two_d):  # dataclasses.replace(p, r=3) on a 2-D problem
        if len(size) != 2:  # type: ignore[arg-type]
            raise ValueError(f"the 2-D fields apply to a 2-D {name}, got {name}={size!r}")
        size = tuple(v if v is not None else old for v, old in zip(two_d, size))  # type: ignore

    try:
        rank = len(size)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{name} must be 1 to 3 ints, got {size!r}") from None
    if rank not in RANKS:
        raise ValueError(f"{name} must be 1 to 3 ints (ranks 1-3), got {size!r}")
    sizes = as_tuple(name, size, rank, 1)
    return sizes


def geometry(size: Any, kernel: Any, two_d: tuple[Any, Any, Any, Any], stride: Any,
             dilation: Any, padding: Any, padding_end: Any, window_stride: bool = False,
             strings_refused: str | None = None) -> dict[str, Any]:
    """The spatial fields every family shares, normalised and checked: size and kernel (from
    themselves or the 2-D h, w, r, s), stride (with `window_stride`, None means the window, as in
    pooling),
    dilation, and padding before and after (`padding_end` None when symmetric). A family whose
    padding takes no string says so in `strings_refused`."""
    h, w, r, s = two_d
    size = spatial_sizes("size", size, (h, w))
    kernel = spatial_sizes("kernel", kernel, (r, s))
    if len(kernel) != len(size):
        raise ValueError(f"kernel {kernel} and size {size} must have one int per axis")
    rank = len(size)
    stride = kernel if stride is None and window_stride else as_tuple("stride", stride, rank, 1)
    dilation = as_tuple("dilation", dilation, rank, 1)
    if strings_refused and isinstance(padding, str):
        raise ValueError(strings_refused.format(padding=padding))
    before, after = per_side(padding, rank, kernel, stride, dilation, padding_end)
    return dict(size=size, kernel=kernel, stride=stride, padding=before,
                padding_end=None if after == before else after, dilation=dilation)


def torch_same_padding(kernel: Sizes, stride: Sizes, dilation: Sizes) -> tuple[Sizes, Sizes]:
    """torch's padding='same': stride 1 only; the total d(K-1) split with the odd pixel after
    (torch pads the input explicitly then, as convbench does)."""
    if any(s != 1 for s in stride):
        raise ValueError(f"padding='same' needs stride 1, got stride={stride} (torch's rule; "
                         "convbench.tf_padding gives TensorFlow's SAME at any stride)")
    totals = [dilated_extent(k, d) - 1 for k, d in zip(kernel, dilation, strict=True)]
    return tuple(t // 2 for t in totals), tuple(t - t // 2 for t in totals)


def per_side(value: object, rank: int, kernel: Sizes, stride: Sizes, dilation: Sizes,
             padding_end: object = None) -> tuple[Sizes, Sizes]:
    """(before, after) per axis from torch's forms (an int, one int per axis, 'same', 'valid'),
    per-side pairs ((before, after) per axis), or `padding` before with `padding_end` after."""
    if padding_end is not None:
        return as_tuple("padding", value, rank, 0), as_tuple("padding_end", padding_end, rank, 0)
    if isinstance(value, str):
        if value == "valid":
            return (0,) * rank, (0,) * rank
        if value == "same":
            return torch_same_padding(kernel, stride, dilation)
        raise ValueError(f"padding must be an int, {rank} ints, per-side pairs, 'same' or "
                         f"'valid', got {value!r}")
    if hasattr(value, "__len__") and len(value) and all(  # type: ignore[arg-type]
            hasattr(v, "__len__") for v in value):  # type: ignore[union-attr]
        pairs = tuple(value)  # type: ignore[arg-type]
        if len(pairs) != rank or any(len(v) != 2 for v in pairs):
            raise ValueError(f"padding as per-side pairs needs {rank} (before, after) pairs, "
                             f"got {value!r}")
        return (as_tuple("padding", [v[0] for v in pairs], rank, 0),
                as_tuple("padding", [v[1] for v in pairs], rank, 0))
    symmetric = as_tuple("padding", value, rank, 0)
    return symmetric, symmetric


def hash_once(cls: type) -> type:
    """A frozen dataclass of problems whose hash is computed once per object: the algorithms'
    caches key on the problem in every call (on the smoke suite's NCHW 1x1, an 8 us call of
    im2col, the dataclass's own hash took 0.5 us). The hash is of the fields `==` compares, as
    the dataclass's is; it stays out of pickles and copies (str hashes differ between
    processes)."""
    names = tuple(f.name for f in dataclasses.fields(cls) if f.compare)

    def __hash__(self: Any) -> int:
        found = self.__dict__.get("_hash")
        if found is None:
            found = hash(tuple(getattr(self, name) for name in names))
            self.__dict__["_hash"] = found
        return found

    def __getstate__(self: Any) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_hash"}

    cls.__hash__ = __hash__  # type: ignore[method-assign]
    cls.__getstate__ = __getstate__  # type: ignore[attr-defined]
    return cls


class Spatial:
    """The spatial geometry every problem family shares, for ranks 1-3. The 2-D names (h, w,
    r, s, out_h, out_w) read a 2-D problem's axes, for the code that is 2-D by nature."""

    size: Sizes
    kernel: Sizes
    stride: Sizes
    padding: Sizes
    padding_end: Sizes | None
    dilation: Sizes
    layout: str
    n: int
    c: int

    @property
    def rank(self) -> int:
        """How many spatial axes: 1 (W), 2 (H, W) or 3 (D, H, W)."""
        return len(self.size)

    out_size: Sizes  # each family computes its own (convolution, pooling, transposed)

    def _not_2d(self, name: str) -> TypeError:
        return TypeError(f"{name} is a 2-D field; this problem has rank {self.rank} "
                         "(use size, kernel and out_size)")

    # The 2-D names are read on every call of the 2-D algorithms (tiny problems take tens of
    # microseconds): plain indexing, and out_size computed once per problem.
    @property
    def h(self) -> int:
        if len(self.size) != 2:
            raise self._not_2d("h")
        return self.size[0]

    @property
    def w(self) -> int:
        if len(self.size) != 2:
            raise self._not_2d("w")
        return self.size[1]

    @property
    def r(self) -> int:
        if len(self.kernel) != 2:
            raise self._not_2d("r")
        return self.kernel[0]

    @property
    def s(self) -> int:
        if len(self.kernel) != 2:
            raise self._not_2d("s")
        return self.kernel[1]

    @property
    def out_h(self) -> int:
        if len(self.size) != 2:
            raise self._not_2d("out_h")
        return self.out_size[0]

    @property
    def out_w(self) -> int:
        if len(self.size) != 2:
            raise self._not_2d("out_w")
        return self.out_size[1]

    @property
    def padding_after(self) -> Sizes:
        """The padding after each axis (bottom, right, back): `padding_end`, or when that is
        None (symmetric padding, torch's) the padding before."""
        return self.padding if self.padding_end is None else self.padding_end

    @property
    def symmetric(self) -> bool:
        """Whether each axis is padded alike before and after (torch's own padding)."""
        return self.padding == self.padding_after

    @property
    def channels_last(self) -> bool:
        return self.layout == "nhwc"

    @property
    def kernel_extent(self) -> Sizes:
        """Dilated kernel (window) extent d(K-1)+1 per axis: the receptive field of one layer."""
        return tuple(dilated_extent(k, d) for k, d in zip(self.kernel, self.dilation,
                                                           strict=True))

    @functools.cached_property
    def pixels(self) -> int:
        """Output positions per image and channel: the product of the output sizes."""
        return math.prod(self.out_size)

    @property
    def input_shape(self) -> Sizes:
        return (self.n, self.c, *self.size)

    def axes(self) -> list[tuple[str, int, int, int, int, int, int, int]]:
        """(axis name, input size, kernel, stride, padding before, after, dilation, output size)
        per axis."""
        return list(zip(AXIS_NAMES[self.rank], self.size, self.kernel, self.stride,
                        self.padding, self.padding_after, self.dilation, self.out_size,
                        strict=True))

    def shape_label(self) -> str:
        """'(N, C, H, W)' and its like for this rank."""
        return "(N, C, " + ", ".join(SPATIAL_LETTERS[self.rank]) + ")"


def check_fits(p: Spatial, what: str = "kernel") -> None:
    """Every axis's dilated extent fits in the padded input."""
    for axis, size, k, _, before, after, d, _ in _axes_unsized(p):
        extent = dilated_extent(k, d)
        if extent > size + before + after:
            padded = (f"{size} + 2*{before}" if before == after
                      else f"{size} + {before} + {after}")
            if what == "pool window":
                raise ValueError(f"pool window extent {extent} is larger than the padded input "
                                 f"{padded} on the {axis} axis (kernel_size={p.kernel}, "
                                 f"dilation={p.dilation})")
            raise ValueError(f"{what} {axis} {k} (dilated extent {extent}) is larger than the "
                             f"padded input {axis} {padded}")


def _axes_unsized(p: Spatial) -> list[tuple[str, int, int, int, int, int, int, None]]:
    return list(zip(AXIS_NAMES[p.rank], p.size, p.kernel, p.stride, p.padding, p.padding_after,
                    p.dilation, (None,) * p.rank, strict=True))


def _padded_text(size: int, before: int, after: int) -> str:
    return f"{size} + 2*{before}" if before == after else f"{size} + {before} + {after}"


def out_size_line(size: int, k: int, s: int, p: int, d: int, out: int,
                  ceil_mode: bool = False, after: int | None = None) -> str:
    after = p if after is None else after
    core = f"({_padded_text(size, p, after)} - {d}*({k}-1) - 1) / {s}"
    if not ceil_mode:
        return f"floor({core}) + 1 = {out}"
    ceiled = -(-(size + p + after - d * (k - 1) - 1) // s) + 1
    if ceiled != out:  # torch drops a last window that would start in the right padding
        return f"ceil({core}) + 1 - 1 = {out} (the last window would start in the padding)"
    return f"ceil({core}) + 1 = {out}"


def transpose_size_line(size: int, k: int, s: int, p: int, d: int, op: int, out: int,
                        after: int | None = None) -> str:
    after = p if after is None else after
    pads = f"2*{p}" if p == after else f"{p} - {after}"
    return f"({size}-1)*{s} - {pads} + {d}*({k}-1) + {op} + 1 = {out}"


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
    im2col_bytes: int
    rank: int

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
        kernel = "*".join(KERNEL_LETTERS[self.rank])
        columns = "*".join(SPATIAL_LETTERS[self.rank])
        return [
            (f"parameters (C/g*{kernel} + bias) * K", f"{self.params:,}"),
            ("MACs", f"{self.macs:,}"),
            ("FLOPs (2 per MAC + bias adds)", f"{self.flops:,}"),
            *direction_flops(self),
            ("bytes moved (input + weights + output)",
             f"{self.bytes_moved:,} ({format_bytes(self.bytes_moved, 4)})"),
            ("arithmetic intensity", f"{self.intensity:.2f} FLOP/byte"),
            (f"im2col workspace (C*{kernel} x N*O{columns.replace('*', '*O')})",
             format_bytes(self.im2col_bytes, 4)),
        ]
