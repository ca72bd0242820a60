"""Shrinking: a failing (problem, algorithm) made as small as it will go while it still fails.

Greedy, first improvement: from the current problem, try smaller ones in a fixed order (a
spatial axis dropped, the rank falling 3 -> 2 -> 1; the options turned off: channels last,
bias, ceil mode, ...; then each count and each axis's size, kernel, stride,
dilation and padding toward 1 or 0, all the way, halfway, one step), keep the first that is
valid (the problem classes accept it), still run by the algorithm and fails the same way (the
same status, and for an error the same exception type), and start again from it. Every move
makes some number smaller or turns an option off, so the search ends; a budget of checks
bounds it too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from convbench.algorithms.registry import Algorithm, get
from convbench.fuzz.campaign import BACKEND, SLOW_S, CheckResult, check_one, too_slow
from convbench.problems import ConvProblem, ConvTransposeProblem, PoolProblem, Problem

BUDGET = 400  # checks one shrink may spend
AXIS_FIELDS = ("size", "kernel", "stride", "dilation", "padding", "padding_end",
               "output_padding")
# Options and the value that is "off": trying it is always a simplification.
PLAIN = {"layout": "nchw", "bias": False, "ceil_mode": False, "count_include_pad": True,
         "divisor_override": None}


@dataclass(frozen=True)
class Shrunk:
    """The smallest failing problem found, its failing check, and the checks it took."""

    problem: Problem
    check: CheckResult
    checks_run: int


def shrink(p: Problem, algorithm: Algorithm | str, input_seed: int = 0, exact: bool = False,
           budget: int = BUDGET) -> Shrunk:
    """The smallest problem reached from `p` on which `algorithm` fails as it fails on `p`."""
    algorithm = get(p.op, algorithm) if isinstance(algorithm, str) else algorithm
    failure = check_one(p, algorithm, input_seed, exact)
    spent = 1
    improved = failure.status != "ok"
    while improved and spent < budget:
        improved = False
        for candidate in smaller(p):
            if spent >= budget:
                break
            if not _runs(candidate, algorithm):
                continue
            check = check_one(candidate, algorithm, input_seed, exact)
            spent += 1
            if same_failure(check, failure):
                p, failure, improved = candidate, check, True
                break
    return Shrunk(p, failure, spent)


def same_failure(check: CheckResult, failure: CheckResult) -> bool:
    """Wrong stays wrong; an error stays an error of the same exception type."""
    if check.status != failure.status or check.status == "ok":
        return False
    return check.status != "error" or (check.message.split(":")[0]
                                        == failure.message.split(":")[0])


def _runs(p: Problem, algorithm: Algorithm) -> bool:
    try:
        return algorithm.why_not(p, BACKEND) is None and not too_slow(algorithm, p, SLOW_S)
    except Exception:  # noqa: BLE001 - a plugin's declaration that raises: not this one
        return False


def fields(p: Problem) -> dict[str, Any]:
    """The constructor's arguments of `p`, padding after each axis explicit."""
    values = {f.name: getattr(p, f.name) for f in dataclasses.fields(p)}
    values["padding_end"] = p.padding_after
    return values


def build(p: Problem, **changes: Any) -> Problem | None:
    """A problem of `p`'s class with `changes`, or None where the class refuses it."""
    values = fields(p) | changes
    try:
        if isinstance(p, PoolProblem):
            return PoolProblem(**values)
        if isinstance(p, ConvTransposeProblem):
            return ConvTransposeProblem(**values)
        return ConvProblem(**values)
    except ValueError:
        return None


def smaller(p: Problem) -> Iterator[Problem]:
    """The valid problems one move smaller than `p`, the largest moves first."""
    for changes in _moves(p):
        candidate = build(p, **changes)
        if candidate is not None and measure(candidate) < measure(p):
            yield candidate


def measure(p: Problem) -> int:
    """What every move decreases: the sum of the problem's numbers plus its options that are
    on (so that the search cannot cycle)."""
    values = fields(p)
    numbers = sum(sum(v) if isinstance(v, tuple) else v for v in values.values()
                  if isinstance(v, int | tuple) and not isinstance(v, bool))
    options = sum(values[name] != plain for name, plain in PLAIN.items() if name in values)
    return numbers + options


def _moves(p: Problem) -> Iterator[dict[str, Any]]:
    values = fields(p)
    yield from _rank_drops(values)
    for name, plain in PLAIN.items():
        if name in values and values[name] != plain:
            yield {name: plain}
    yield from _count_moves(values)
    for name in AXIS_FIELDS:
        if name in values:
            yield from _axis_moves(values, name)


def _rank_drops(values: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Each spatial axis removed from every per-axis field (rank 3 -> 2, 2 -> 1)."""
    rank = len(values["size"])
    if rank == 1:
        return
    for axis in range(rank):
        yield {name: values[name][:axis] + values[name][axis + 1:]
               for name in AXIS_FIELDS if name in values}


def _steps(value: int, low: int) -> list[int]:
    """Smaller values toward `low`: all the way, halfway, one step."""
    return [v for v in dict.fromkeys((low, (value + low) // 2, value - 1)) if low <= v < value]


def _count_moves(values: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """n; then channels: all to one, fewer groups of the same width, narrower groups."""
    for n in _steps(values["n"], 1):
        yield {"n": n}
    groups = values.get("groups", 1)
    if "k" in values:
        yield {"c": 1, "k": 1, "groups": 1}
        per_c, per_k = values["c"] // groups, values["k"] // groups
        for g in _steps(groups, 1):
            yield {"c": per_c * g, "k": per_k * g, "groups": g}
        for c in _steps(per_c, 1):
            yield {"c": c * groups}
        for k in _steps(per_k, 1):
            yield {"k": k * groups}
        for g in _steps(groups, 1):  # ungrouped, or fewer groups of wider channels
            yield {"groups": g}
    else:
        for c in _steps(values["c"], 1):
            yield {"c": c}


def _axis_moves(values: dict[str, Any], name: str) -> Iterator[dict[str, Any]]:
    """One axis of one field smaller; a smaller size takes a kernel that still fits along."""
    low = 0 if name in ("padding", "padding_end", "output_padding") else 1
    current = values[name]
    for axis, value in enumerate(current):
        for v in _steps(value, low):
            change = {name: current[:axis] + (v,) + current[axis + 1:]}
            yield change
            if name == "size" and values["kernel"][axis] > v:
                kernel = values["kernel"]
                yield change | {"kernel": kernel[:axis] + (v,) + kernel[axis + 1:]}
