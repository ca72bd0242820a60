"""Inputs, the float64 oracle, and the tolerance model that every result is checked against.

The oracle is torch.nn.functional in float64 on the float64 image of the case's inputs: it is not
one of the algorithms under test (those run in the case's dtype through convbench's registry), so
only an algorithm's own rounding and mistakes show up as error.

Tolerance model. For an output element y_i = sum of L products (L = C/g * R * S, plus the bias),
floating-point accumulation error is bounded by a multiple of eps * sum |x||w|. Let
M_i = (|x| conv |w|)_i + |b| (the magnitude of the terms, computed by the oracle too). We check the
normalised error max_i |y_i - ref_i| / M_i against

    tolerance = eps(dtype) * (factor * sqrt(L) + floor)

with factor = 1 and floor = 0 for direct methods; an algorithm declares more where its
mathematics rounds more (Winograd's transforms: a floor that grows with the tile).
Normalising by M_i instead of by |y_i| keeps cancellation from looking like an error, and the
sqrt(L) growth follows the statistical error of a long sum; the worst case is L * eps.

Exactness mode (benchdnn's integer filling): every input is a small integer times a power of two,
so every product and every partial sum is exactly representable; any correct summation order
gives the oracle's value bit for bit, and `exact` algorithms must match it exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from convbench.backends import torch_module
from convbench.problems import Problem
from convbench.problems.ops import family_op


@dataclass(frozen=True)
class Inputs:
    """The arrays an op takes, in call order (``algorithm.fn(problem, *inputs.arrays)``)."""

    names: tuple[str, ...]
    arrays: tuple[np.ndarray | None, ...]

    def __getattr__(self, name: str) -> np.ndarray | None:
        if name in ("names", "arrays"):
            raise AttributeError(name)
        try:
            return self.arrays[self.names.index(name)]
        except ValueError:
            raise AttributeError(f"no input named {name!r} (inputs: {self.names})") from None


@dataclass(frozen=True)
class Reference:
    """The float64 outputs and, per output element, the magnitude M_i of the summed terms."""

    outputs: tuple[np.ndarray, ...]
    magnitudes: tuple[np.ndarray, ...]

    @property
    def y(self) -> np.ndarray:
        return self.outputs[0]


@dataclass(frozen=True)
class Check:
    max_abs_err: float
    rel_l2_err: float
    norm_err: float  # max_i |err_i| / M_i, the number compared with the tolerance
    tolerance: float
    ok: bool


@dataclass(frozen=True)
class OpOracle:
    """How to make inputs for an op, compute its float64 reference, and how long its sums are."""

    make_inputs: Callable[[Any, np.random.Generator, bool], Inputs]
    reference: Callable[[Any, Inputs], Reference]
    lengths: Callable[[Any], tuple[int, ...]]  # accumulation length of each output


_ORACLES: dict[str, OpOracle] = {}


def register_oracle(op: str, oracle: OpOracle) -> None:
    if op in _ORACLES:
        raise ValueError(f"an oracle for {op!r} is already registered")
    _ORACLES[op] = oracle



def oracle_for(op: str) -> OpOracle:
    try:
        return _ORACLES[family_op(op)]
    except KeyError:
        raise ValueError(f"no oracle for op {op!r} (known: {', '.join(_ORACLES)})") from None


def draw(rng: np.random.Generator, shape: tuple[int, ...], dtype: str, exact: bool,
         scale: float) -> np.ndarray:
    """Standard normal values, or in exactness mode integers in [-2, 2] times `scale` (2^-k)."""
    if exact:
        return (rng.integers(-2, 3, size=shape) * scale).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def make_inputs(p: Problem, seed: int = 0, exact: bool = False) -> Inputs:
    """Random inputs for `p`: standard normal, or in exactness mode scaled small integers. In
    channels-last memory (p.layout "nhwc") the activations (x, grad_out) lie channels last,
    as torch's channels_last tensors do; the weights stay as they are."""
    inputs = oracle_for(p.op).make_inputs(p, np.random.default_rng(seed), exact)
    if getattr(p, "layout", "nchw") != "nhwc":
        return inputs
    arrays = tuple(_channels_last(a) if name in ("x", "grad_out") else a
                   for name, a in zip(inputs.names, inputs.arrays, strict=True))
    return Inputs(inputs.names, arrays)


def _channels_last(a: np.ndarray) -> np.ndarray:
    """The same values, channels last in memory: (N, *spatial, C) viewed as (N, C, *spatial)."""
    return np.moveaxis(np.ascontiguousarray(np.moveaxis(a, 1, -1)), -1, 1)


def reference(p: Problem, inputs: Inputs) -> Reference:
    """The float64 oracle outputs and the term magnitudes M_i."""
    return oracle_for(p.op).reference(p, inputs)


def exact_mode_fits(p: Problem) -> bool:
    """Whether every partial sum of `p` in exactness mode is exactly representable: terms are
    multiples of 2^-3 of at most 4 units (|x| <= 1, |w| <= 1/2), plus a bias of 2 units."""
    mantissa_bits = 24 if p.dtype == "float32" else 53
    return max(oracle_for(p.op).lengths(p)) * 4 + 2 < 2**mantissa_bits


def tolerance(p: Problem, factor: float = 1.0, output: int = 0, floor_eps: float = 0.0) -> float:
    """eps(dtype) * (factor * sqrt(L) + floor_eps) for the given output's accumulation length L.
    The floor is for algorithms whose error does not shrink relative to M_i as L grows
    (Winograd's transforms amplify rounding by a constant that depends on the tile)."""
    eps = float(np.finfo(p.dtype).eps)
    return eps * (factor * math.sqrt(oracle_for(p.op).lengths(p)[output]) + floor_eps)


def _check_one(y: np.ndarray, ref: np.ndarray, magnitude: np.ndarray, tol: float,
               exact: bool, spread: bool = False) -> Check:
    if y.shape != ref.shape:
        raise ValueError(f"output shape {y.shape} differs from the oracle's {ref.shape}")
    y64 = y.astype(np.float64)
    # An infinity the oracle has too (a max-pooling window wholly in the padding is -inf) is no
    # error; any other one is (inf - inf is NaN there, which fails every comparison).
    agreed = np.isinf(ref) & (y64 == ref)
    with np.errstate(invalid="ignore"):
        err = np.where(agreed, 0.0, np.abs(y64 - ref))
    max_abs = float(err.max(initial=0.0))
    ref_norm = float(np.linalg.norm(ref))
    rel_l2 = float(np.linalg.norm(err)) / ref_norm if ref_norm else float(np.linalg.norm(err))
    # Element by element against M_i; where no term reaches an element (M_i = 0, the reference
    # exactly 0), or for an algorithm whose rounding spreads over the whole output (an FFT's
    # does), against the largest magnitude of the output.
    largest = float(magnitude.max(initial=0.0)) or 1.0
    scale = largest if spread else np.where(magnitude > 0, magnitude, largest)
    with np.errstate(invalid="ignore"):  # an infinite error over an infinite magnitude: NaN
        norm_err = float((err / scale).max(initial=0.0))
    ok = bool(np.all(np.isfinite(y) | agreed)) and (max_abs == 0.0 if exact else norm_err <= tol)
    return Check(max_abs, rel_l2, norm_err, tol, ok)


def check_algorithm(p: Problem, y: np.ndarray | tuple[np.ndarray, ...], ref: Reference,
                    algorithm: Any, exact: bool = False) -> Check:
    """`check` with the tolerance model the algorithm declares (its factor, its floor, and
    whether its rounding is spread over the whole output, as an FFT's is)."""
    return check(p, y, ref, algorithm.tolerance_factor, exact, algorithm.floor_eps(p),
                 algorithm.error_spreads)


def check(p: Problem, y: np.ndarray | tuple[np.ndarray, ...], ref: Reference,
          factor: float = 1.0, exact: bool = False, floor_eps: float = 0.0,
          spread: bool = False) -> Check:
    """Compare an algorithm's output(s) with the oracle; `exact` demands bit-for-bit equality.
    With several outputs (a backward pass), the worst one relative to its tolerance is reported."""
    outputs = y if isinstance(y, tuple) else (y,)
    if len(outputs) != len(ref.outputs):
        raise ValueError(f"{len(outputs)} outputs, the oracle has {len(ref.outputs)}")
    checks = [
        _check_one(out, r, m, 0.0 if exact else tolerance(p, factor, i, floor_eps), exact,
                   spread)
        for i, (out, r, m) in enumerate(zip(outputs, ref.outputs, ref.magnitudes))
    ]
    worst = max(checks, key=lambda c: (not c.ok, c.norm_err / c.tolerance if c.tolerance else
                                       c.max_abs_err))
    return Check(worst.max_abs_err, worst.rel_l2_err, worst.norm_err, worst.tolerance,
                 all(c.ok for c in checks))


def as_float64_tensor(a: np.ndarray | None) -> Any:  # a torch tensor, kept out of signatures
    return None if a is None else torch_module().from_numpy(np.asarray(a, dtype=np.float64))
