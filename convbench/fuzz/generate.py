"""The fuzzer's problems: `draw(seed, index, ops)` is one problem, a pure function of its
arguments, so that a campaign can be split over processes or machines case by case.

Every op of every rank (convolution forward and both backward directions, the transposed
convolution, max and average pooling forward and backward), both float widths and both layouts.
Each feature is drawn with a bias to its edges, where off-by-one mistakes live: 1x1 inputs, a
kernel as large as the input, strides past the kernel or the input, dilation, groups equal to
the channels, odd and prime sizes, padding that differs before and after, padding as wide as
the kernel (outputs no input reaches), ceil mode, count_include_pad off, divisor_override and
output_padding. A draw the problem classes refuse (ValueError) or one over the size bounds is
drawn again from the same generator, so the result stays a function of (seed, index).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from convbench.problems import (
    OPS, ConvProblem, ConvTransposeProblem, PoolProblem, Problem, op_named,
)
from convbench.problems.ops import family_op

# Sizes: small, odd and prime ones weighted up; the largest side per rank keeps cases quick.
SIZES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 16, 17, 23, 29, 31)
MAX_SIDE = {1: 31, 2: 17, 3: 8}
KERNELS = (1, 2, 3, 4, 5, 6, 7)
CHANNELS = (1, 2, 3, 4, 5, 6, 8)
# Bounds on one problem, so that a campaign of thousands of cases takes minutes.
MAX_ELEMENTS = 10_000  # input + output + weights
MAX_MACS = 250_000  # multiply-adds (pooling: window elements visited)
MAX_ATTEMPTS = 1000


def op_names() -> tuple[str, ...]:
    """Every op the generator draws, by name (conv2d, conv1d_backward, max_pool3d, ...)."""
    return tuple(op.name for op in OPS)


def case_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of case `index` of campaign `seed`, independent of every other case."""
    return np.random.default_rng([seed, index])


def draw(seed: int, index: int, ops: Sequence[str] | None = None) -> Problem:
    """Case `index` of campaign `seed`: a valid problem of one of `ops` (default every op)."""
    return draw_from(case_rng(seed, index), ops)


def draw_from(rng: np.random.Generator, ops: Sequence[str] | None = None) -> Problem:
    """A valid, bounded problem drawn with `rng`; the op first, uniformly among `ops`."""
    names = tuple(ops) if ops else op_names()
    for _ in range(MAX_ATTEMPTS):
        op = op_named(names[_weighted(rng, [_weight(name) for name in names])])
        try:
            problem = _build(rng, op.problem, op.rank, op.name, op.directions)
        except ValueError:
            continue
        if within_bounds(problem):
            return problem
    raise RuntimeError(f"no valid problem of {names} in {MAX_ATTEMPTS} draws")  # a generator bug


def within_bounds(p: Problem) -> bool:
    """Small enough for the fuzzer: elements and multiply-adds under the bounds."""
    outputs = math.prod(p.output_shape)
    elements = math.prod(p.input_shape) + outputs + getattr(p, "params", 0)
    work = p.macs if hasattr(p, "macs") else outputs * math.prod(p.kernel)
    return elements <= MAX_ELEMENTS and work <= MAX_MACS


def _weight(op: str) -> int:
    """Convolutions (forward and backward) twice as often: most algorithms run them."""
    return 2 if family_op(op) in ("conv2d", "conv2d_backward") else 1


def _weighted(rng: np.random.Generator, weights: Sequence[int]) -> int:
    return int(rng.choice(len(weights), p=np.asarray(weights) / sum(weights)))


def _pick(rng: np.random.Generator, values: Sequence[Any]) -> Any:
    return values[int(rng.integers(len(values)))]


def _chance(rng: np.random.Generator, probability: float) -> bool:
    return bool(rng.random() < probability)


def _build(rng: np.random.Generator, cls: type, rank: int, op: str,
           directions: tuple[str, ...]) -> Problem:
    """One attempt; the problem class refuses an invalid combination with ValueError."""
    geometry = _geometry(rng, rank, pool=cls is PoolProblem, dilate=not op.startswith("avg"))
    common = dict(n=_pick(rng, (1, 1, 1, 2, 3)), dtype=_pick(rng, ("float32", "float64")),
                  layout="nhwc" if _chance(rng, 0.35) else "nchw", **geometry)
    if cls is PoolProblem:
        return PoolProblem(op.split("_")[0], direction=_pick(rng, directions),
                           **_pool_options(rng, op), c=_pick(rng, CHANNELS), **common)
    channels = _channels(rng)
    if cls is ConvTransposeProblem:
        output_padding = tuple(int(rng.integers(max(s, d))) if _chance(rng, 0.6) else 0
                               for s, d in zip(geometry["stride"], geometry["dilation"]))
        return ConvTransposeProblem(output_padding=output_padding, bias=_chance(rng, 0.5),
                                    **channels, **common)
    return ConvProblem(direction=_pick(rng, directions), bias=_chance(rng, 0.5), **channels,
                       **common)


def _geometry(rng: np.random.Generator, rank: int, pool: bool, dilate: bool
              ) -> dict[str, tuple[int, ...]]:
    """Sizes, kernel, stride, dilation (unless average pooling, which has none) and per-side
    padding, axis by axis, edge-biased."""
    sizes = [s for s in SIZES if s <= MAX_SIDE[rank]]
    size = (1,) * rank if _chance(rng, 0.08) else tuple(_pick(rng, sizes) for _ in range(rank))
    whole = _chance(rng, 0.12)  # the kernel as large as the input
    square = _pick(rng, KERNELS) if _chance(rng, 0.5) else None  # as Winograd's tiles need
    kernel = tuple(i if whole else square or _pick(rng, KERNELS) for i in size)
    dilated = dilate and _chance(rng, 0.2)
    dilation = tuple(_pick(rng, (1, 2, 3)) if dilated else 1 for _ in range(rank))
    stride = _strides(rng, size, kernel)
    padding = _padding(rng, kernel, dilation, pool)
    padding_end = _padding(rng, kernel, dilation, pool) if _chance(rng, 0.35) else padding
    return dict(size=size, kernel=kernel, stride=stride, dilation=dilation, padding=padding,
                padding_end=padding_end)


def _strides(rng: np.random.Generator, size: tuple[int, ...], kernel: tuple[int, ...]
             ) -> tuple[int, ...]:
    """Mostly 1; else 2 or 3, the kernel, or past the input (one output along that axis)."""
    kind = _pick(rng, ("one", "one", "one", "small", "kernel", "large"))
    if kind == "one":
        return (1,) * len(size)
    if kind == "kernel":
        return kernel
    if kind == "small":
        return tuple(_pick(rng, (1, 2, 3)) for _ in size)
    return tuple(i + int(rng.integers(4)) for i in size)


def _padding(rng: np.random.Generator, kernel: tuple[int, ...], dilation: tuple[int, ...],
             pool: bool) -> tuple[int, ...]:
    """None, 'same'-like, or any width up to the dilated kernel (pooling: half the window)."""
    kind = _pick(rng, ("zero", "zero", "half", "any"))
    limits = [k // 2 if pool else d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    if kind == "zero":
        return (0,) * len(kernel)
    if kind == "half":
        return tuple(min(d * (k - 1) // 2, m) for k, d, m in zip(kernel, dilation, limits))
    return tuple(int(rng.integers(m + 1)) for m in limits)


def _channels(rng: np.random.Generator) -> dict[str, int]:
    """c, k and groups: mostly ungrouped; else depthwise (groups = channels) or in between."""
    kind = _pick(rng, ("plain", "plain", "plain", "depthwise", "grouped"))
    if kind == "plain":
        return dict(c=_pick(rng, CHANNELS), k=_pick(rng, CHANNELS), groups=1)
    groups = _pick(rng, (2, 3, 4, 6)) if kind == "grouped" else _pick(rng, CHANNELS)
    per_group = (1, 1) if kind == "depthwise" else (_pick(rng, (1, 2)), _pick(rng, (1, 2, 3)))
    multiplier = _pick(rng, (1, 1, 2)) if kind == "depthwise" else per_group[1]
    return dict(c=groups * per_group[0], k=groups * multiplier, groups=groups)


def _pool_options(rng: np.random.Generator, op: str) -> dict[str, Any]:
    """ceil mode for both kinds; count_include_pad and divisor_override for average pooling."""
    options: dict[str, Any] = dict(ceil_mode=_chance(rng, 0.3))
    if op.startswith("avg"):
        options["count_include_pad"] = not _chance(rng, 0.3)
        options["divisor_override"] = int(rng.integers(1, 10)) if _chance(rng, 0.1) else None
    return options
