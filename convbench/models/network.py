"""What a model reader produces, whatever it read: the network's conv and pooling layers in the
order they run, each as a problem, with the layers it could not model and why; and the suite of
them, identical layers merged into one case with their count.

A layer's problem is exact or the layer is not in the list: each reader checks the problem's
output shape against the shape the model itself gives that layer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from convbench.problems import DTYPES, Problem
from convbench.run.suite import Case, Suite

SHAPE_FORMAT = "NxCxL, NxCxHxW or NxCxDxHxW, e.g. 1x3x224x224"


@dataclass(frozen=True)
class Layer:
    """One conv or pooling layer as it ran: where it sits, its problem, and a fact the problem
    does not hold (`note`: a padding mode other than zeros, applied to the input first)."""

    name: str
    problem: Problem
    note: str = ""


@dataclass(frozen=True)
class Skipped:
    """A conv-like layer convbench cannot model, with the reason."""

    name: str
    kind: str  # the module's class or the ONNX op
    reason: str

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}): {self.reason}"


@dataclass(frozen=True)
class Network:
    """A model's layers in the order they ran (`layers`), and the ones left out (`skipped`)."""

    name: str  # the suite's name: a directory name
    source: str  # what was read, on what input: 'torchvision:resnet50 on 1x3x224x224'
    layers: tuple[Layer, ...]
    skipped: tuple[Skipped, ...] = field(default=())

    def merged(self) -> list[tuple[Layer, int]]:
        """Each distinct layer (problem and note) at its first occurrence, with its count."""
        counts: dict[tuple[Problem, str], int] = {}
        first: dict[tuple[Problem, str], Layer] = {}
        for layer in self.layers:
            key = (layer.problem, layer.note)
            counts[key] = counts.get(key, 0) + 1
            first.setdefault(key, layer)
        return [(first[key], count) for key, count in counts.items()]

    def summary(self) -> str:
        """'53 layers, 23 distinct' and what was left out, with the reasons."""
        text = f"{len(self.layers)} layers, {len(self.merged())} distinct"
        if self.skipped:
            text += "; not modelled: " + "; ".join(str(s) for s in self.skipped)
        return text

    def suite(self, **settings: Any) -> Suite:
        """The suite of the distinct layers in network order, each case with its count;
        `settings` are Suite fields (budget_s, algorithms, ...)."""
        if not self.layers:
            raise ValueError(f"{self.source}: no convolution or pooling layer convbench can "
                             f"model" + (f" (not modelled: {self.skipped[0]})"
                                         if self.skipped else ""))
        names: set[str] = set()
        cases = tuple(Case(_unique(case_name(layer, count), names), layer.problem, count)
                      for layer, count in self.merged())
        description = f"{self.source}: {self.summary()}"
        return Suite(name=self.name, path=self.source, cases=cases, description=description,
                     network=True, **settings)


def case_name(layer: Layer, count: int) -> str:
    """The layer's path as a name of word characters ('layer1.0.conv2' -> 'layer1_0_conv2'),
    its padding mode when it has one, and '_x3' when the layer occurs 3 times."""
    name = re.sub(r"\W+", "_", layer.name).strip("_") or layer.problem.op
    mode = re.match(r"(\w+) padding", layer.note)
    if mode:
        name += f"_{mode.group(1)}"
    return name if count == 1 else f"{name}_x{count}"


def _unique(name: str, taken: set[str]) -> str:
    """`name`, or name_2, name_3, ... when it is taken (a module run on two shapes)."""
    candidate, i = name, 1
    while candidate in taken:
        i += 1
        candidate = f"{name}_{i}"
    taken.add(candidate)
    return candidate


def parse_shape(text: str | Sequence[int], ranks: Sequence[int] | None = (3, 4, 5)
                ) -> tuple[int, ...]:
    """'1x3x224x224' (or a sequence of ints) -> (1, 3, 224, 224): positive ints, as many as one
    of `ranks` (None: any number); ValueError saying what was expected."""
    if isinstance(text, str):
        parts = text.strip().lower().split("x")
        shape = tuple(int(p) for p in parts if p.strip().isdigit())
        shown = text if len(shape) == len(parts) else repr(text)
        shape = shape if len(shape) == len(parts) else ()
    else:
        shape = tuple(text)
        shown = format_shape(shape)
        if not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
            shape = ()
    if not shape or min(shape) < 1 or (ranks is not None and len(shape) not in ranks):
        raise ValueError(f"input shape must be {SHAPE_FORMAT}"
                         f"{'' if ranks is None else f' ({_ranks(ranks)} positive ints)'}, "
                         f"got {shown}")
    return shape


def _ranks(ranks: Sequence[int]) -> str:
    *most, last = [str(r) for r in ranks]
    return f"{', '.join(most)} or {last}" if most else last


def format_shape(shape: Sequence[int]) -> str:
    """(1, 3, 224, 224) -> '1x3x224x224'."""
    return "x".join(str(d) for d in shape)


def dtype_reason(dtype: str) -> str | None:
    """Why a layer of this element type cannot be a problem, or None when it can."""
    if dtype in DTYPES:
        return None
    return f"its input is {dtype}; convbench's problems are {' or '.join(DTYPES)}"


def shape_mismatch(problem: Problem, output: Sequence[int]) -> str | None:
    """Why the problem is not the layer: the model gives another output shape; else None."""
    expected = tuple(problem.output_shape)
    if tuple(output) == expected or (len(output) == len(expected) - 1 and  # unbatched
                                     tuple(output) == expected[1:] and problem.n == 1):
        return None
    return (f"the model's output is {format_shape(output)}, convbench's problem "
            f"{problem} gives {format_shape(expected)}")
