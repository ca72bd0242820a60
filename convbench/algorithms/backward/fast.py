"""Backward-data by the fast algorithms, where the same mathematics applies.

grad_x is a stride-1 forward convolution of the stride-dilated gradient with the flipped,
channel-swapped kernel (backward.direct's construction). FFT and Winograd compute that forward
convolution as they compute any other: FFT for every stride and dilation, Winograd where the
layer has stride 1 and dilation 1 (no zero-stuffed gradient, no dilated kernel). bwd_weight is
a correlation over N*OH*OW, not a convolution with a small kernel: these do not offer it.
Each runs where its forward runs: the forward's backends, and its checks on the flipped conv.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from convbench.algorithms.conv import fft, winograd
from convbench.algorithms.backward.direct import dilated_gradient, flipped_problem
from convbench.algorithms.backward.direct import flipped_weights
from convbench.backends.xp import Array
from convbench.problems import ConvProblem
from convbench.algorithms.registry import Algorithm, get, register

Forward = Callable[..., Array]


def _data_only(p: ConvProblem) -> str | None:
    return None if p.direction == "bwd_data" else "bwd_data only (bwd_weight is no convolution)"


def _dense_only(p: ConvProblem) -> str | None:
    if p.stride != (1, 1) or p.dilation != (1, 1):
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


def _flipped_cost(algorithm: Algorithm) -> Callable[[ConvProblem], float] | None:
    """bwd_data costs what the forward costs on the flipped problem it computes."""
    forward_cost = algorithm.cost_s
    return None if forward_cost is None else (lambda p: forward_cost(flipped_problem(p)))


def _register(name: str, forward: Forward, model: Callable[[ConvProblem], int],
              extra_checks: tuple = ()) -> None:
    algorithm = get("conv2d", name)

    def workspace_bytes(p: ConvProblem) -> int:
        q = flipped_problem(p)
        return (p.n * q.c * q.h * q.w + p.k * p.reduction_length) * p.itemsize + model(q)

    def run(p: ConvProblem, grad_out: Array, w: Array) -> Array:
        return backward_data(p, grad_out, w, forward)

    register("conv2d_backward", name, backends=algorithm.backends,
             checks=(_data_only, *extra_checks, _flipped_fits(algorithm)),
             requires=algorithm.requires, workspace_bytes=workspace_bytes,
             tolerance_factor=algorithm.tolerance_factor,
             tolerance_floor_eps=algorithm.tolerance_floor_eps,
             error_spreads=algorithm.error_spreads,
             cost_s=_flipped_cost(algorithm),
             summary=f"bwd_data as {name}'s forward on the flipped kernel")(run)


_register("fft", fft.fft, fft.workspace_bytes)
for _name, (_m, _r) in winograd.FAMILY.items():
    _alpha = _m + _r - 1
    _register(_name, functools.partial(winograd.winograd, alpha=_alpha),
              functools.partial(winograd.workspace_bytes, alpha=_alpha), (_dense_only,))
