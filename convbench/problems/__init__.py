"""The problem model: one frozen dataclass per op family, descriptors, and the facts of a layer.

conv.py, pool.py and transpose.py each hold one family; base.py what they share; grammar.py
formats a problem as its descriptor and descriptor.py parses one; benchdnn.py reads oneDNN
benchdnn's descriptors and writes its repro lines; describe.py and receptive_field.py derive the
facts `convbench describe` prints.
"""

from convbench.problems.base import (
    DIRECTIONS,
    DTYPES,
    LAYOUTS,
    RANKS,
    PaddingArg,
    Pair,
    Sizes,
    as_pair,
    as_tuple,
    conv_out_size,
    dilated_extent,
    pool_out_size,
    positive_int,
)
from convbench.problems.conv import ConvProblem
from convbench.problems.descriptor import format_descriptor, parse
from convbench.problems.family import Problem
from convbench.problems.ops import OPS, Op, op_named
from convbench.problems.pool import PoolProblem
from convbench.problems.transpose import ConvTransposeProblem, transpose_out_size

__all__ = [
    "DIRECTIONS", "DTYPES", "LAYOUTS", "OPS", "RANKS", "ConvProblem", "ConvTransposeProblem",
    "Op", "PaddingArg", "Pair", "Sizes", "as_tuple",
    "PoolProblem", "Problem", "as_pair", "conv_out_size", "dilated_extent", "format_descriptor",
    "op_named", "parse", "pool_out_size", "positive_int", "transpose_out_size",
]
