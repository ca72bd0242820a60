"""The implementations: math only, no harness. Importing this package registers the built-ins.

conv/ holds the forward convolutions, backward/ the backward passes and the transposed
convolution, pool/ the pooling algorithms, each module one algorithm family; windows.py is the
windowing helper they share, registry.py the declarations and auto.py the selector that reads
them. Every function takes ``(problem, *inputs)`` with arrays already validated against the
problem, and returns the output array in the input's dtype.
"""

# Registration order is the order of tables and reports: slowest, most literal first.
from convbench.algorithms.conv import direct_naive  # noqa: F401  isort: skip
from convbench.algorithms.conv import direct, im2col, torch_ref  # noqa: F401  isort: skip
from convbench.algorithms.conv import torch_im2col  # noqa: F401  isort: skip
from convbench.algorithms.conv import winograd  # noqa: F401  isort: skip  (the F(m, r) family)
from convbench.algorithms.conv import polyphase  # noqa: F401  isort: skip  (strided Winograd)
from convbench.algorithms.conv import fft  # noqa: F401  isort: skip
from convbench.algorithms.conv import direct_cuda, im2col_cuda, winograd_cuda  # noqa: F401  isort: skip
# The other ops, in the same order. Their functions take the op's inputs in the oracle's order:
# conv2d_backward (problem, grad_out, w) in bwd_data and (problem, grad_out, x) in bwd_weight;
# conv_transpose2d (problem, x, w, bias); pooling (problem, x), its backward (problem, grad_out, x).
from convbench.algorithms.backward import direct_naive as _bd_naive  # noqa: F401  isort: skip
from convbench.algorithms.backward import direct as _bd_direct  # noqa: F401  isort: skip
from convbench.algorithms.backward import im2col as _bd_im2col  # noqa: F401  isort: skip
from convbench.algorithms.backward import torch_ref as _bd_torch  # noqa: F401  isort: skip
from convbench.algorithms.pool import naive, windowed  # noqa: F401  isort: skip
from convbench.algorithms.pool import torch_ref as _pool_torch  # noqa: F401  isort: skip
from convbench.algorithms.backward import fast  # noqa: F401  isort: skip
from convbench.algorithms import auto  # noqa: F401  isort: skip  (the selector, last)
