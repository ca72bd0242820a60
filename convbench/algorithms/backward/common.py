"""What every conv2d_backward algorithm shares: one entry point for both directions, and the
transposed convolution as the bwd_data pass of its adjoint.

A backward problem carries its direction. Its inputs are (grad_out, w) in bwd_data and
(grad_out, x) in bwd_weight, as benchdnn's BWD_D and BWD_W take them; bwd_weight also returns
the bias gradient (the sum of grad_out over N and the spatial axes) when the problem has a
bias. Arrays are any array-API library's (numpy, cupy, torch), through the shim
convbench.backends.xp.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from convbench.algorithms.windows import add_bias, crop
from convbench.backends import ARRAY_API_BACKENDS
from convbench.backends.xp import Array, contiguous, device, namespace
from convbench.problems import ConvProblem
from convbench.problems.transpose import ConvTransposeProblem

Pass = Callable[[ConvProblem, Array, Array], Array]


def bias_gradient(grad_out: Array) -> Array:
    """(K,): the sum of grad_out (N, K, *out) over everything but K."""
    return namespace(grad_out).sum(grad_out, axis=(0, *range(2, grad_out.ndim)))


def by_direction(p: ConvProblem, grad_out: Array, operand: Array, data: Pass,
                 weight: Pass) -> Array | tuple[Array, Array]:
    """grad_x = data(p, grad_out, w) in bwd_data; grad_w = weight(p, grad_out, x) in bwd_weight,
    with (grad_w, grad_bias) when p has a bias."""
    if p.direction == "bwd_data":
        return data(p, grad_out, operand)
    grad_w = weight(p, grad_out, operand)
    return (grad_w, bias_gradient(grad_out)) if p.bias else grad_w


def padded_zeros(p: ConvProblem, like: Array) -> Array:
    """(N, G, C/g, H + 2P, W + 2P) zeros on `like`'s library, dtype and device: the padded
    input's gradient, before cropping, with its channels split by group so that a scatter-add
    indexes one group or one kernel tap (array[index] += ..., no views needed)."""
    (ph, pw), g = p.padding, p.groups
    shape = (p.n, g, p.c // g, p.h + 2 * ph, p.w + 2 * pw)
    return namespace(like).zeros(shape, dtype=like.dtype, device=device(like))


def cropped(p: ConvProblem, grad_pad: Array) -> Array:
    """The input gradient (N, C, H, W), contiguous, from padded_zeros' (N, G, C/g, Hp, Wp)."""
    n, g, cg, hp, wp = grad_pad.shape
    return contiguous(crop(namespace(grad_pad).reshape(grad_pad, (n, g * cg, hp, wp)), p))


def gradient_rows(p: ConvProblem, grad_out: Array) -> Array:
    """grad_out (N, K, OH, OW) as (G, K/g, N*OH*OW): a GEMM operand over the pixels (a copy)."""
    xp = namespace(grad_out)
    g, kg = p.groups, p.k // p.groups
    grouped = xp.reshape(grad_out, (p.n, g, kg, -1))  # (N, G, K/g, OH*OW)
    return xp.reshape(xp.permute_dims(grouped, (1, 2, 0, 3)), (g, kg, -1))


def zero_extended(x: Array, extra: tuple[int, ...]) -> Array:
    """x (N, C, *spatial) with `extra` zeros after each spatial axis (bottom, right, back)."""
    xp = namespace(x)
    n, c, *size = x.shape
    shape = (n, c, *(s + e for s, e in zip(size, extra, strict=True)))
    out = xp.zeros(shape, dtype=x.dtype, device=device(x))
    out[(slice(None), slice(None), *(slice(0, s) for s in size))] = x
    return out


def transposed(p: ConvTransposeProblem, x: Array, w: Array, bias: Array | None,
               data: Pass) -> Array:
    """conv_transpose2d as data(p.adjoint, x, w) + bias. x is the adjoint's output gradient,
    zero-padded at the bottom and right where the adjoint has more outputs (output_padding at
    least the stride)."""
    q = p.adjoint
    extra = tuple(o - s for o, s in zip(q.out_size, p.size, strict=True))
    if any(extra):
        x = zero_extended(x, extra)
    return add_bias(data(q, x, w), bias)


def forward_cost(forward_cost_s: Callable[[ConvProblem], float]) -> Callable[..., float]:
    """A backward pass's cost as its forward's: the same MACs, and copies of the same size (the
    columns an unfold gathers are the ones col2im scatters back)."""
    return lambda p: forward_cost_s(replace(p, direction="fwd"))


def register_pair(name: str, data: Pass, weight: Pass, workspace_bytes: Callable[..., int],
                  summaries: tuple[str, str], estimate_s: Callable[..., float] | None = None,
                  backends: tuple[str, ...] = ARRAY_API_BACKENDS, role: str = "candidate",
                  cost_s: Callable[..., float] | None = None, ranks: tuple[int, ...] = (2,),
                  layouts: tuple[str, ...] = ("nchw",)) -> None:
    """Register `name` for conv2d_backward (bwd_data by `data`, bwd_weight by `weight`) and for
    conv_transpose2d (the adjoint's bwd_data by `data`), with the same declarations."""
    from convbench.algorithms.registry import register

    def adjoint(model: Callable[..., Any] | None) -> Callable[..., Any] | None:
        return None if model is None else (lambda p: model(p.adjoint))

    register("conv2d_backward", name, backends=backends, exact=True, role=role, cost_s=cost_s,
             workspace_bytes=workspace_bytes, estimate_s=estimate_s, summary=summaries[0],
             ranks=ranks, layouts=layouts)(
        lambda p, grad_out, operand: by_direction(p, grad_out, operand, data, weight))
    register("conv_transpose2d", name, backends=backends, exact=True, role=role,
             cost_s=adjoint(cost_s), workspace_bytes=adjoint(workspace_bytes),
             estimate_s=adjoint(estimate_s), ranks=ranks, layouts=layouts,
             summary=summaries[1])(
        lambda p, x, w, bias: transposed(p, x, w, bias, data))
