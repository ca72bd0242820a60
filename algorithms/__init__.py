"""The implementations: math only, no harness. Importing this package registers the built-ins.

Installed as ``convbench.algorithms``; each module registers its functions with
``convbench.registry.register``. Every function takes ``(problem, x, w, bias)`` with arrays already
validated against the problem, and returns the output array in the input's dtype.
"""

# Registration order is the order of tables and reports: slowest, most literal first.
from convbench.algorithms import direct_naive  # noqa: F401  isort: skip
from convbench.algorithms import direct, im2col, torch_ref  # noqa: F401
from convbench.algorithms import winograd  # noqa: F401  (the F(m, r) family)
from convbench.algorithms import fft  # noqa: F401
from convbench.algorithms import direct_cuda, im2col_cuda, winograd_cuda  # noqa: F401  (cupy only)
# The other ops, in the same order. Their functions take the op's inputs in the oracle's order:
# conv2d_backward (problem, grad_out, w) in bwd_data and (problem, grad_out, x) in bwd_weight;
# conv_transpose2d (problem, x, w, bias); pooling (problem, x), its backward (problem, grad_out, x).
from convbench.algorithms import direct_naive_backward, direct_backward  # noqa: F401  isort: skip
from convbench.algorithms import im2col_backward, torch_backward  # noqa: F401  isort: skip
from convbench.algorithms import pool_naive, pool_windowed, pool_torch  # noqa: F401  isort: skip
from convbench.algorithms import fast_backward  # noqa: F401  isort: skip
