"""The backward passes by the fast algorithms, where the same mathematics applies.

grad_x is a stride-1 forward convolution of the stride-dilated gradient with the flipped,
channel-swapped kernel (backward.direct's construction). FFT and Winograd compute that forward
convolution as they compute any other: FFT for every stride and dilation, at ranks 1-3 and in
either memory layout, Winograd where the layer has stride 1 and dilation 1 (no zero-stuffed
gradient, no dilated kernel). grad_w is a correlation of the input with the gradient over
N*OH*OW, not a convolution with a small kernel: FFT computes it as a product of transforms
(backward.fft_weight); Winograd's tiles do not, and it offers bwd_data only. Each runs where its
forward runs: the forward's backends, ranks and layouts, and its checks on the flipped conv.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

from convbench.algorithms.conv import fft, winograd
from convbench.algorithms.backward import fft_weight
from convbench.algorithms.backward.common import by_direction
from convbench.algorithms.backward.direct import dilated_gradient, flipped_problem
from convbench.algorithms.backward.direct import flipped_weights
from convbench.backends.xp import Array
from convbench.problems import ConvProblem
from convbench.algorithms.registry import Algorithm, get, register

Forward = Callable[..., Array]


@dataclass(frozen=True)
class WeightPass:
    """An algorithm's bwd_weight: grad_w = fn(p, grad_out, x), and its models."""

    fn: Callable[[ConvProblem, Array, Array], Array]
    workspace_bytes: Callable[[ConvProblem], int]
    cost_s: Callable[[ConvProblem], float]


def _data_only(p: ConvProblem) -> str | None:
    return None if p.direction == "bwd_data" else "bwd_data only (bwd_weight is no convolution)"


def _dense_only(p: ConvProblem) -> str | None:
    if any(s != 1 for s in p.stride) or any(d != 1 for d in p.dilation):
        return f"stride 1 and dilation 1 only, got stride {p.stride} dilation {p.dilation}"
    return None


def backward_data(p: ConvProblem, grad_out: Array, w: Array, forward: Forward) -> Array:
    q = flipped_problem(p)
    return forward(q, dilated_gradient(p, grad_out), flipped_weights(p, w), None)


def _flipped_fits(algorithm: Algorithm) -> Callable[[ConvProblem], str | None]:
    """A check: what the forward algorithm's own checks say of the flipped conv. Its backends
    and requirements are declared alongside, so that why_not(p, backend) answers for the backend
    asked."""
    def fits(p: ConvProblem) -> str | None:
        if p.direction != "bwd_data":
            return None
        q = flipped_problem(p)
        return next((reason for check in algorithm.checks if (reason := check(q))), None)

    return fits


def _cost(algorithm: Algorithm, weight: WeightPass | None) -> Callable[[ConvProblem], float] | None:
    """bwd_data costs what the forward costs on the flipped problem it computes; bwd_weight
    what its own model says."""
    forward_cost = algorithm.cost_s
    if forward_cost is None:
        return None

    def cost_s(p: ConvProblem) -> float:
        if p.direction == "bwd_weight" and weight is not None:
            return weight.cost_s(p)
        return forward_cost(flipped_problem(p))

    return cost_s


def _register(name: str, forward: Forward, model: Callable[[ConvProblem], int],
              extra_checks: tuple = (), weight: WeightPass | None = None) -> None:
    """conv2d_backward `name`: bwd_data by the forward on the flipped conv; bwd_weight by
    `weight`, or refused with _data_only's reason where there is none."""
    algorithm = get("conv2d", name)

    def workspace_bytes(p: ConvProblem) -> int:
        if p.direction == "bwd_weight" and weight is not None:
            return weight.workspace_bytes(p)
        q = flipped_problem(p)
        return (p.n * q.c * math.prod(q.size) + p.k * p.reduction_length) * p.itemsize + model(q)

    def data(p: ConvProblem, grad_out: Array, w: Array) -> Array:
        return backward_data(p, grad_out, w, forward)

    def run(p: ConvProblem, grad_out: Array, operand: Array) -> Array | tuple[Array, Array]:
        if weight is None:
            return data(p, grad_out, operand)
        return by_direction(p, grad_out, operand, data, weight.fn)

    directions = "bwd_data and bwd_weight" if weight else "bwd_data"
    register("conv2d_backward", name, backends=algorithm.backends,
             checks=(*(() if weight else (_data_only,)), *extra_checks,
                     _flipped_fits(algorithm)),
             requires=algorithm.requires, workspace_bytes=workspace_bytes,
             tolerance_factor=algorithm.tolerance_factor,
             tolerance_floor_eps=algorithm.tolerance_floor_eps,
             rank_floor_eps=algorithm.rank_floor_eps,
             error_spreads=algorithm.error_spreads, cost_s=_cost(algorithm, weight),
             ranks=algorithm.ranks, layouts=algorithm.layouts,
             summary=f"{directions}: bwd_data as {name}'s forward on the flipped kernel"
             + ("; bwd_weight as a correlation by FFT" if weight else ""))(run)


_register("fft", fft.fft, fft.workspace_bytes, weight=WeightPass(
    fft_weight.backward_weight, fft_weight.workspace_bytes, fft_weight.cost_s))
for _name, (_m, _r) in winograd.FAMILY.items():
    _alpha = _m + _r - 1
    _register(_name, functools.partial(winograd.winograd, alpha=_alpha),
              functools.partial(winograd.workspace_bytes, alpha=_alpha), (_dense_only,))
