"""Running a problem on an algorithm that declares less than the problem has, exactly.

An algorithm declares the ranks it takes natively (`ranks`), whether it pads each side of an axis
on its own (`per_side`), and the memory layouts it takes (`layouts`). The rest is bridged here,
the way the production libraries bridge it, and the bridge is part of the timed call:

- **rank 1 on a 2-D algorithm**: the signal is a 2-D image of height 1 (views, no copy);
- **padding that differs before and after an axis**: the input is padded explicitly by the
  difference (torch pads that way for padding='same' with an even kernel extent), then the
  algorithm pads both sides alike; a transposed convolution crops its output instead;
- **layout**: never bridged. An algorithm that does not declare channels-last does not run a
  channels-last case (a layout change would be timed with it); the library API converts for it.

`lower(problem, algorithm)` returns the bridge, or the reason there is none.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from convbench.backends.xp import Array, namespace, pad_constant
from convbench.problems import Problem

Transform = Callable[[tuple[Any, ...]], tuple[Any, ...]]


@dataclass(frozen=True)
class Lowered:
    """The problem the algorithm's function receives, and how the arrays go there and back."""

    problem: Problem
    inputs: Transform | None = None  # the op's inputs, in the oracle's order
    outputs: Callable[[Any], Any] | None = None  # the function's result (an array or a tuple)
    padded_elements: int = 0  # what the explicit padding writes (for the cost model)

    @property
    def identity(self) -> bool:
        return self.inputs is None and self.outputs is None

    def bind(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """fn(problem, *arrays, **options) with the bridge around it; fn itself when none."""
        if self.identity:
            return fn
        p, inputs, outputs = self.problem, self.inputs, self.outputs

        def bridged(_: Any, *arrays: Any, **options: Any) -> Any:
            result = fn(p, *(inputs(arrays) if inputs else arrays), **options)
            return outputs(result) if outputs else result

        return bridged


def lower(p: Problem, ranks: tuple[int, ...], per_side: bool,
          layouts: tuple[str, ...]) -> Lowered | str:
    """The bridge from `p` to what an algorithm with these declarations takes, or why none.
    A problem outside the spatial model (a plugin's own op) passes as it is."""
    if not hasattr(p, "size"):
        return Lowered(p)
    if p.layout not in layouts:
        return (f"takes {' and '.join(layouts)} memory only, not {p.layout} (a layout change "
                "would be timed with it)")
    if p.rank not in ranks and not (p.rank == 1 and 2 in ranks):
        taken = ", ".join(f"{r}-D" for r in ranks)
        return f"takes {taken} problems only, not {p.rank}-D"
    steps: list[Lowered] = []
    if not p.symmetric and not per_side:
        padded = _explicit_padding(p)
        if isinstance(padded, str):
            return padded
        steps.append(padded)
    if p.rank not in ranks:
        steps.append(_lifted(steps[-1].problem if steps else p))
    return _chain(p, steps)


def _chain(p: Problem, steps: list[Lowered]) -> Lowered:
    if not steps:
        return Lowered(p)
    if len(steps) == 1:
        return steps[0]
    first, second = steps

    def inputs(arrays: tuple[Any, ...]) -> tuple[Any, ...]:
        staged = first.inputs(arrays) if first.inputs else arrays
        return second.inputs(staged) if second.inputs else staged

    def outputs(result: Any) -> Any:
        staged = second.outputs(result) if second.outputs else result
        return first.outputs(staged) if first.outputs else staged

    return Lowered(second.problem, inputs, outputs, first.padded_elements)


# --- which of an op's arrays are spatial -------------------------------------------------------
def _roles(p: Problem) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What each input and each output is: 'image' (spatial, padded with the input),
    'grad' (spatial, the output's gradient), 'kernel' (weights), or 'other'."""
    if p.family == "pool":
        return (("image",), ("out",)) if p.direction == "fwd" else (("grad", "image"),
                                                                     ("image",))
    if p.family == "deconv":
        return ("grad", "kernel", "other"), ("out",)
    if p.direction == "bwd_data":
        return ("grad", "kernel"), ("image",)
    if p.direction == "bwd_weight":
        return ("grad", "image"), ("kernel", "other")
    return ("image", "kernel", "other"), ("out",)


def _map(roles: tuple[str, ...], arrays: tuple[Any, ...],
         change: Callable[[str, Any], Any]) -> tuple[Any, ...]:
    return tuple(a if a is None else change(role, a) for role, a in zip(roles, arrays))


# --- rank 1 as a 2-D image of height 1 ---------------------------------------------------------
def _lifted(p: Problem) -> Lowered:
    changes: dict[str, Any] = {f: (lead, *getattr(p, f)) for f, lead in (
        ("size", 1), ("kernel", 1), ("stride", 1), ("padding", 0), ("dilation", 1))}
    changes["padding_end"] = (0, *p.padding_after)
    if p.family == "deconv":
        changes["output_padding"] = (0, *p.output_padding)
    in_roles, out_roles = _roles(p)

    def up(role: str, a: Array) -> Array:
        return a if role == "other" else a[:, :, None, :]

    def down(role: str, a: Array) -> Array:
        return a if role == "other" else a[:, :, 0, :]

    def outputs(result: Any) -> Any:
        if isinstance(result, tuple):
            return _map(out_roles, result, down)
        return down(out_roles[0], result)

    return Lowered(replace(p, **changes), lambda arrays: _map(in_roles, arrays, up), outputs)


# --- per-side padding as explicit padding ------------------------------------------------------
def _explicit_padding(p: Problem) -> Lowered | str:
    """Symmetric padding min(before, after) per axis for the algorithm, the rest explicit: on the
    input (conv, pooling) or cropped from the output (transposed convolution)."""
    common = tuple(min(b, e) for b, e in zip(p.padding, p.padding_after, strict=True))
    extra = tuple((b - m, e - m) for b, e, m in zip(p.padding, p.padding_after, common,
                                                      strict=True))
    if p.family == "deconv":
        return _cropped_output(p, common, extra)
    value = 0.0
    if p.family == "pool":
        if p.kind == "avg" and not p.count_include_pad:
            return ("pads each side alike only, and average pooling without the padding in "
                    "its divisor cannot be padded explicitly")
        value = -math.inf if p.kind == "max" else 0.0
    size = tuple(s + b + e for s, (b, e) in zip(p.size, extra, strict=True))
    lowered = replace(p, size=size, padding=common, padding_end=common)
    if lowered.out_size != p.out_size:
        return ("pads each side alike only, and explicit padding changes this problem's "
                "output size (ceil mode)")
    in_roles, out_roles = _roles(p)
    channels_last = p.channels_last

    def pad(role: str, a: Array) -> Array:
        return _pad(a, extra, value, channels_last) if role == "image" else a

    def crop(role: str, a: Array) -> Array:
        return _crop(a, extra) if role == "image" else a

    def outputs(result: Any) -> Any:
        if isinstance(result, tuple):
            return _map(out_roles, result, crop)
        return crop(out_roles[0], result)

    padded = p.n * p.c * math.prod(size)
    return Lowered(lowered, lambda arrays: _map(in_roles, arrays, pad), outputs, padded)


def _cropped_output(p: Problem, common: tuple[int, ...],
                    extra: tuple[tuple[int, int], ...]) -> Lowered:
    lowered = replace(p, padding=common, padding_end=common)

    def outputs(y: Array) -> Array:
        return _crop(y, extra)

    return Lowered(lowered, None, outputs)


def _pad(a: Array, extra: tuple[tuple[int, int], ...], value: float,
         channels_last: bool) -> Array:
    """`a` (N, C, *spatial) with `extra` (before, after) elements of `value` per spatial axis,
    in the memory layout it came in."""
    xp = namespace(a)
    if not channels_last:
        return pad_constant(a, ((0, 0), (0, 0), *extra), value)
    moved = xp.permute_dims(a, (0, *range(2, a.ndim), 1))  # (N, *spatial, C): contiguous
    padded = pad_constant(moved, ((0, 0), *extra, (0, 0)), value)
    return xp.permute_dims(padded, (0, a.ndim - 1, *range(1, a.ndim - 1)))


def _crop(a: Array, extra: tuple[tuple[int, int], ...]) -> Array:
    index = tuple(slice(b, a.shape[2 + i] - e) for i, (b, e) in enumerate(extra))
    return a[(slice(None), slice(None), *index)]
