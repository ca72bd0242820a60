"""Direct backward passes: no column buffer, like the forward `direct`.

bwd_data is the convolution of the gradient with the flipped kernel: grad_out, dilated by the
stride (S-1 zeros between pixels) and padded by d(K-1) - P, convolved at stride 1 with the
kernel flipped in R and S and with its channel axes swapped, by the forward `direct` itself.
It does S_h*S_w times the useful MACs on strided layers (the zeros), the price of reusing the
forward. bwd_weight is the correlation of the input with the gradient, one GEMM per kernel tap:
grad_w[:, :, r, s] = grad_out . tap(r, s) over N*OH*OW.
"""

from __future__ import annotations

from convbench.algorithms.conv import direct
from convbench.algorithms.backward.common import forward_cost, gradient_rows, register_pair
from convbench.algorithms.windows import pad, tap
from convbench.backends.xp import Array, contiguous, device, matmul_into_part, namespace
from convbench.algorithms.conv import channels_last
from convbench.problems import LAYOUTS, ConvProblem


def flipped_problem(p: ConvProblem) -> ConvProblem:
    """The stride-1 forward conv from the dilated, padded gradient (N, K, H+eh-1, W+ew-1) to
    grad_x (N, C, H, W): kernel R x S, dilation d, the groups of p."""
    eh, ew = p.kernel_extent
    return ConvProblem(p.n, p.k, p.h + eh - 1, p.w + ew - 1, p.c, p.r, p.s,
                       dilation=p.dilation, groups=p.groups, dtype=p.dtype)


def flipped_weights(p: ConvProblem, w: Array) -> Array:
    """(K, C/g, R, S) -> (C, K/g, R, S): each group's channel axes swapped, taps reversed."""
    xp = namespace(w)
    g, cg, kg = p.groups, p.c // p.groups, p.k // p.groups
    swapped = xp.permute_dims(xp.reshape(w, (g, kg, cg, p.r, p.s)), (0, 2, 1, 3, 4))
    flipped = xp.flip(swapped, axis=(3, 4))  # (G, C/g, K/g, R, S); a view in numpy
    return xp.reshape(contiguous(flipped), (p.c, kg, p.r, p.s))


def _inside(offset: int, stride: int, count: int, size: int) -> tuple[int, int]:
    """[first, stop) of the i < count with 0 <= offset + i*stride < size."""
    first = 0 if offset >= 0 else -(offset // stride)
    return first, max(first, min(count, (size - 1 - offset) // stride + 1))


def dilated_gradient(p: ConvProblem, grad_out: Array) -> Array:
    """grad_out spread to every S-th pixel of (N, K, H+eh-1, W+ew-1), shifted by d(K-1) - P;
    pixels whose windows lie wholly in the padding fall outside and are dropped."""
    (eh, ew), (ph, pw), (sh, sw) = p.kernel_extent, p.padding, p.stride
    shape = (p.n, p.k, p.h + eh - 1, p.w + ew - 1)
    out = namespace(grad_out).zeros(shape, dtype=grad_out.dtype, device=device(grad_out))
    at_h, at_w = eh - 1 - ph, ew - 1 - pw  # where output pixel (0, 0) lands
    i0, i1 = _inside(at_h, sh, p.out_h, out.shape[2])
    j0, j1 = _inside(at_w, sw, p.out_w, out.shape[3])
    if i1 == i0 or j1 == j0:
        return out
    rows = slice(at_h + i0 * sh, at_h + (i1 - 1) * sh + 1, sh)
    cols = slice(at_w + j0 * sw, at_w + (j1 - 1) * sw + 1, sw)
    out[:, :, rows, cols] = grad_out[:, :, i0:i1, j0:j1]
    return out


def _planar(p: ConvProblem) -> bool:
    """A 2-D channels-first problem: the NCHW passes here; every other one runs channels last
    (convbench.algorithms.conv.channels_last)."""
    return p.rank == 2 and not p.channels_last


def backward_data(p: ConvProblem, grad_out: Array, w: Array) -> Array:
    if not _planar(p):
        return channels_last.backward_data(p, grad_out, w, unfolded=False)
    q = flipped_problem(p)
    return direct.conv2d_direct(q, dilated_gradient(p, grad_out), flipped_weights(p, w), None)


def backward_weight(p: ConvProblem, grad_out: Array, x: Array) -> Array:
    if not _planar(p):
        return channels_last.backward_weight(p, grad_out, x, unfolded=False)
    xp = namespace(grad_out, x)
    g, cg, kg, rows = p.groups, p.c // p.groups, p.k // p.groups, p.n * p.out_h * p.out_w
    x_pad = pad(x, p.padding)
    grad = gradient_rows(p, grad_out)  # (G, K/g, N*OH*OW), a copy
    grad_w = xp.empty((p.r, p.s, g, kg, cg), dtype=x.dtype, device=device(x))
    for r in range(p.r):
        for s in range(p.s):
            pixels = xp.reshape(tap(x_pad, p, r, s), (p.n, g, cg, -1))  # (N, G, C/g, OH*OW), copy
            pixels = xp.reshape(xp.permute_dims(pixels, (1, 0, 3, 2)), (g, rows, cg))  # copy
            matmul_into_part(grad, pixels, grad_w, (r, s, ...), (g, kg, cg))  # (G, K/g, C/g)
    grad_w = contiguous(xp.permute_dims(grad_w, (2, 3, 4, 0, 1)))  # (G, K/g, C/g, R, S)
    return xp.reshape(grad_w, p.weight_shape)


def workspace_bytes(p: ConvProblem) -> int:
    """bwd_data: the dilated gradient, the flipped weights and the forward direct's workspace;
    bwd_weight: the padded input, the reordered gradient, one tap twice and grad_w's taps.
    Outside 2-D channels first, the channels-last passes' copies."""
    if not _planar(p):
        return channels_last.backward_workspace_elements(p, unfolded=False) * p.itemsize
    if p.direction == "bwd_data":
        q = flipped_problem(p)
        elements = p.n * q.c * q.h * q.w + p.k * p.reduction_length
        return elements * p.itemsize + direct.workspace_bytes(q)
    padded = p.n * p.c * (p.h + 2 * p.padding[0]) * (p.w + 2 * p.padding[1])
    pixels = p.n * p.out_h * p.out_w
    elements = (padded if p.padding != (0, 0) else 0) + pixels * (p.k + 2 * p.c)
    return (elements + p.k * p.reduction_length) * p.itemsize


register_pair(
    "direct", backward_data, backward_weight, workspace_bytes,
    ("bwd_data: dilated gradient conv flipped kernel; bwd_weight: one GEMM per tap",
     "input-dilated direct convolution with the flipped kernel"),
    cost_s=forward_cost(direct.cost_s), ranks=(2, 3), layouts=LAYOUTS,
)
