"""The textbook backward passes, looping over output positions as direct_naive does forward.

bwd_data scatters each output pixel's gradient back through the kernel into its window:
grad_x[window] += grad_out[:, :, i, j] . w. bwd_weight accumulates the window times the pixel's
gradient: grad_w += grad_out[:, :, i, j] x window. The transposed convolution is the bwd_data
pass of its adjoint convolution.
"""

from __future__ import annotations

from convbench.algorithms.conv import direct_naive
from convbench.algorithms.backward.common import cropped, padded_zeros, register_pair
from convbench.algorithms.windows import pad
from convbench.backends.xp import Array, device, namespace
from convbench.problems import ConvProblem


def _window(p: ConvProblem, i: int, j: int) -> tuple[slice, slice]:
    """Rows and columns of the padded input that output (i, j) reads."""
    (sh, sw), (dh, dw), (eh, ew) = p.stride, p.dilation, p.kernel_extent
    return slice(i * sh, i * sh + eh, dh), slice(j * sw, j * sw + ew, dw)


def backward_data(p: ConvProblem, grad_out: Array, w: Array) -> Array:
    xp = namespace(grad_out, w)
    kg = p.k // p.groups
    grad_pad = padded_zeros(p, grad_out)  # (N, G, C/g, H + 2P, W + 2P)
    for i in range(p.out_h):
        for j in range(p.out_w):
            rows, cols = _window(p, i, j)
            for g in range(p.groups):
                pixel = grad_out[:, g * kg : (g + 1) * kg, i, j]  # (N, K/g)
                contribution = xp.tensordot(pixel, w[g * kg : (g + 1) * kg, ...], axes=1)
                grad_pad[:, g, :, rows, cols] += contribution  # (N, C/g, R, S)
    return cropped(p, grad_pad)


def backward_weight(p: ConvProblem, grad_out: Array, x: Array) -> Array:
    xp = namespace(grad_out, x)
    cg, kg = p.c // p.groups, p.k // p.groups
    x_pad = pad(x, p.padding)
    grad_w = xp.zeros(p.weight_shape, dtype=x.dtype, device=device(x))  # (K, C/g, R, S)
    for i in range(p.out_h):
        for j in range(p.out_w):
            rows, cols = _window(p, i, j)
            for g in range(p.groups):
                pixel = grad_out[:, g * kg : (g + 1) * kg, i, j]  # (N, K/g)
                window = x_pad[:, g * cg : (g + 1) * cg, rows, cols]  # (N, C/g, R, S)
                grad_w[g * kg : (g + 1) * kg, ...] += xp.tensordot(pixel, window,
                                                                   axes=((0,), (0,)))
    return grad_w


# The forward's cost model, plus what each iteration adds into: the whole of grad_w (bwd_weight)
# or one window of grad_x per image (bwd_data), at a modest rate.
_ELEMENTS_PER_SECOND = 2e8


def estimate_s(p: ConvProblem) -> float:
    touched = p.k * p.reduction_length if p.direction == "bwd_weight" else p.n * p.c * p.r * p.s
    return direct_naive.estimate_s(p) + p.out_h * p.out_w * touched / _ELEMENTS_PER_SECOND


def workspace_bytes(p: ConvProblem) -> int:
    """The padded input gradient (bwd_data) or padded input (bwd_weight); none when unpadded
    (bwd_data's buffer is then the output itself)."""
    if p.padding == (0, 0):
        return 0
    return p.n * p.c * (p.h + 2 * p.padding[0]) * (p.w + 2 * p.padding[1]) * p.itemsize


register_pair(
    "direct_naive", backward_data, backward_weight, workspace_bytes,
    ("loops over output positions: scatter into the window / window x gradient",
     "the adjoint conv's bwd_data: loops over input positions, scattering"), estimate_s=estimate_s,
    role="teaching",
)
