"""The receptive field of a stack of layers: how many input pixels one output pixel sees.

For layers 1..n in order, each with a dilated kernel (or pooling window) extent k' = d(k-1)+1 and
a stride s, per axis:

    r_0 = 1, j_0 = 1
    r_n = r_{n-1} + (k'_n - 1) * j_{n-1}        j_n = j_{n-1} * s_n = s_1 * ... * s_n

j is the jump: the distance, in input pixels, between two neighbouring outputs of layer n
(Araujo, Norris and Sim, "Computing Receptive Fields of Convolutional Neural Networks", Distill
2019). Branches and residual connections are outside this model: a suite lists one path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from convbench.problems.base import Pair
from convbench.problems.family import Problem


@dataclass(frozen=True)
class LayerField:
    """One layer of the stack and the receptive field of its outputs on the network's input."""

    name: str
    extent: Pair  # k' = d(k-1)+1 per axis
    stride: Pair
    jump: Pair  # product of the strides up to and including this layer
    field: Pair  # r_n


def layer_geometry(p: Problem) -> tuple[Pair, Pair]:
    """(extent, stride) of a layer; a transposed convolution has a fractional stride and no
    place in the recurrence."""
    if p.family != "deconv":
        return p.kernel_extent, p.stride  # type: ignore[return-value]
    raise ValueError(f"{p} upsamples (stride 1/s): the receptive-field recurrence needs "
                     "convolution and pooling layers")


def receptive_fields(layers: Sequence[tuple[str, Problem]]) -> list[LayerField]:
    """r_n and j_n after each of the named layers, in order."""
    ranks = {problem.rank for _, problem in layers}
    if len(ranks) > 1:
        raise ValueError(f"a stack of layers has one rank, got ranks {sorted(ranks)}")
    rank = ranks.pop() if ranks else 2
    field, jump = (1,) * rank, (1,) * rank
    out = []
    for name, problem in layers:
        extent, stride = layer_geometry(problem)
        field = tuple(f + (e - 1) * j for f, e, j in zip(field, extent, jump, strict=True))
        jump = tuple(j * s for j, s in zip(jump, stride, strict=True))
        out.append(LayerField(name, extent, stride, jump, field))
    return out
