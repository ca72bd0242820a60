"""The ops, each declared once: what runs it (its problem family and directions), the library
functions that call it, and an example descriptor. The registry, the oracle, `describe` and the
API each key on these names; tests/test_ops_declared.py holds every part to this list."""

from __future__ import annotations

from dataclasses import dataclass

from convbench.problems.conv import ConvProblem
from convbench.problems.family import Problem
from convbench.problems.pool import PoolProblem
from convbench.problems.transpose import ConvTransposeProblem


@dataclass(frozen=True)
class Op:
    """One op: `name` is the registry's and the oracle's key."""

    name: str
    problem: type[Problem]
    directions: tuple[str, ...]
    api: tuple[str, ...]  # the convbench functions that run it
    example: str  # a descriptor of a problem of this op


OPS: tuple[Op, ...] = (
    Op("conv2d", ConvProblem, ("fwd",), ("conv2d",), "n2c8h10k6r3st2p1"),
    Op("conv2d_backward", ConvProblem, ("bwd_data", "bwd_weight"), ("conv2d_backward",),
       "bwd_weight_n2c8h10k6r3st2p1b1"),
    Op("conv_transpose2d", ConvTransposeProblem, ("fwd",), ("conv_transpose2d",),
       "deconv_n2c8h6k6r4st2p1"),
    Op("max_pool2d", PoolProblem, ("fwd",), ("max_pool2d",), "maxpool_n2c4h9r3st2p1"),
    Op("avg_pool2d", PoolProblem, ("fwd",), ("avg_pool2d", "global_avg_pool2d"),
       "avgpool_n2c4h9r3st2p1ci0"),
    Op("max_pool2d_backward", PoolProblem, ("bwd_data",), ("max_pool2d_backward",),
       "bwd_data_maxpool_n2c4h9r3st2p1"),
    Op("avg_pool2d_backward", PoolProblem, ("bwd_data",), ("avg_pool2d_backward",),
       "bwd_data_avgpool_n2c4h9r3st2cm1"),
)


def op_named(name: str) -> Op:
    """The declaration of op `name`; a ValueError lists the known ones."""
    for op in OPS:
        if op.name == name:
            return op
    raise ValueError(f"op={name!r} is not a known op (known: {', '.join(o.name for o in OPS)})")
