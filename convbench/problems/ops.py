"""The ops, each declared once: what runs it (its problem family and directions), the library
functions that call it, and an example descriptor, for each rank 1-3. The registry, the oracle,
`describe` and the API each key on these names; tests/test_ops_declared.py holds every part to
this list.

An algorithm registers under its op's 2-D name (conv2d, max_pool2d_backward, ...), which names
the op's family at every rank; it declares the ranks it takes (convbench.algorithms.registry).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from convbench.problems.conv import ConvProblem
from convbench.problems.family import Problem
from convbench.problems.pool import PoolProblem
from convbench.problems.transpose import ConvTransposeProblem

_RANK = re.compile(r"(?<=[a-z])([123])d(?=$|_)")


@dataclass(frozen=True)
class Op:
    """One op: `name` is the registry's and the oracle's key."""

    name: str
    problem: type[Problem]
    directions: tuple[str, ...]
    api: tuple[str, ...]  # the convbench functions that run it
    example: str  # a descriptor of a problem of this op

    @property
    def rank(self) -> int:
        return op_rank(self.name)


def op_rank(name: str) -> int:
    """The rank an op's name carries: conv3d -> 3, max_pool1d_backward -> 1."""
    match = _RANK.search(name)
    if match is None:
        raise ValueError(f"op={name!r} names no rank (1d, 2d or 3d)")
    return int(match.group(1))


def family_op(name: str) -> str:
    """The 2-D name of an op's family, under which its algorithms register: conv3d -> conv2d."""
    return _RANK.sub("2d", name, count=1)


# (rank, input sizes) of each op's example, by rank: w alone (1-D), h (2-D), id + h (3-D).
_SIZES = {1: ("w10", "s3", "w9", "w6", "s4"), 2: ("h10", "r3", "h9", "h6", "r4"),
          3: ("id6h6", "r3", "id5h5", "id4h4", "r4")}


def _ops(rank: int) -> tuple[Op, ...]:
    size, kernel, pool_size, deconv_size, deconv_kernel = _SIZES[rank]
    d = f"{rank}d"
    return (
        Op(f"conv{d}", ConvProblem, ("fwd",), (f"conv{d}",), f"n2c8{size}k6{kernel}st2p1"),
        Op(f"conv{d}_backward", ConvProblem, ("bwd_data", "bwd_weight"),
           (f"conv{d}_backward",), f"bwd_weight_n2c8{size}k6{kernel}st2p1b1"),
        Op(f"conv_transpose{d}", ConvTransposeProblem, ("fwd",), (f"conv_transpose{d}",),
           f"deconv_n2c8{deconv_size}k6{deconv_kernel}st2p1"),
        Op(f"max_pool{d}", PoolProblem, ("fwd",), (f"max_pool{d}",),
           f"maxpool_n2c4{pool_size}{kernel}st2p1"),
        Op(f"avg_pool{d}", PoolProblem, ("fwd",), (f"avg_pool{d}", f"global_avg_pool{d}"),
           f"avgpool_n2c4{pool_size}{kernel}st2p1ci0"),
        Op(f"max_pool{d}_backward", PoolProblem, ("bwd_data",), (f"max_pool{d}_backward",),
           f"bwd_data_maxpool_n2c4{pool_size}{kernel}st2p1"),
        Op(f"avg_pool{d}_backward", PoolProblem, ("bwd_data",), (f"avg_pool{d}_backward",),
           f"bwd_data_avgpool_n2c4{pool_size}{kernel}st2cm1"),
    )


OPS: tuple[Op, ...] = _ops(2) + _ops(1) + _ops(3)


def op_named(name: str) -> Op:
    """The declaration of op `name`; a ValueError lists the known ones."""
    for op in OPS:
        if op.name == name:
            return op
    raise ValueError(f"op={name!r} is not a known op (known: {', '.join(o.name for o in OPS)})")
