"""The float64 oracle: inputs, references and the tolerance model every result is checked against.

core.py holds the machinery (inputs, tolerance, checks); each op family's module registers its
oracles on import, here, explicitly: conv.py (conv2d, conv2d_backward, conv_transpose2d) and
pool.py (pooling, forward and backward).
"""

from convbench.oracle import conv, pool  # noqa: F401  (registers the oracles)
from convbench.oracle.core import (
    Check,
    Inputs,
    OpOracle,
    Reference,
    check,
    check_algorithm,
    exact_mode_fits,
    make_inputs,
    oracle_for,
    reference,
    tolerance,
)

__all__ = [
    "Check", "Inputs", "OpOracle", "Reference", "check", "check_algorithm", "exact_mode_fits",
    "make_inputs", "oracle_for", "reference", "tolerance",
]
