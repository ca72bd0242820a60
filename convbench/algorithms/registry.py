"""The algorithm registry: one dict, filled by decorators in convbench.algorithms and by plugins.

An algorithm is a function plus a declaration of what it can do. `why_not(problem, backend)`
returns one human-readable sentence (or None); the same sentence is what results, the CLI and
pytest skips show. Its `role` says what `algo="auto"` may do with it, and `cost_s` is its own
model of its time, by which auto ranks the candidates. Third-party packages register through the
entry-point group ``convbench.algorithms``: each entry point names a module whose import calls
`register`.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from convbench.algorithms import cost
from convbench.backends import GPU_BACKENDS, backend_why_not
from convbench.problems import Problem

ENTRY_POINT_GROUP = "convbench.algorithms"
# The algorithm speedups are measured against unless a suite names another.
DEFAULT_REFERENCE = "torch"

Check = Callable[[Any], str | None]

# What auto may do with an algorithm, in the order it falls back through them: a candidate is
# ranked by its cost; the reference (the production library) runs when no candidate supports the
# problem; the teaching loops only when nothing else does; a selector (auto itself) never.
ROLES = ("candidate", "reference", "teaching", "selector")


class Unsupported(ValueError):
    """An algorithm was asked for a problem it does not support; the message is the reason."""


@dataclass(frozen=True)
class Algorithm:
    """A registered implementation and its declaration."""

    op: str
    name: str
    fn: Callable[..., Any]
    backends: tuple[str, ...]
    checks: tuple[Check, ...] = ()
    requires: tuple[str, ...] = ()
    workspace_bytes: Callable[[Any], int] | None = None
    # estimate_s: a deliberately pessimistic upper bound, by which a run skips a case over its
    # time limit. cost_s: a realistic model of the time (convbench.algorithms.cost), by which
    # auto ranks candidates; called only for problems the declaration supports.
    estimate_s: Callable[[Any], float] | None = None
    cost_s: Callable[[Any], float] | None = None
    role: str = "candidate"
    # prepare(problem, *inputs) -> state: work on the weights alone (a filter transform) that an
    # inference-like case does once, outside the timed region; fn then takes prepared=state.
    prepare: Callable[..., Any] | None = None
    # resolve(problem, backend) -> the Algorithm that actually runs (selectors such as "auto").
    resolve: Callable[[Any, str], Algorithm] | None = None
    exact: bool = False
    tolerance_factor: float = 1.0
    tolerance_floor_eps: float = 0.0
    error_spreads: bool = False  # rounding spread over the output (transforms): see oracle
    summary: str = ""
    plugin: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"algorithm {self.name!r} ({self.op}): role={self.role!r} is not "
                             f"one of {', '.join(ROLES)}")

    def why_not(self, problem: Problem, backend: str = "numpy") -> str | None:
        """Why this algorithm cannot run `problem` on `backend`, as one sentence; None if it can."""
        if problem.op != self.op:
            return f"{self.name} implements {self.op}, not {problem.op}"
        if backend not in self.backends:
            return f"runs on {', '.join(self.backends)} only, not {backend}"
        return backend_why_not(backend) or self.missing_requirement() or self.failed_check(problem)

    def bound_s(self, problem: Problem, backend: str = "numpy") -> float | None:
        """A pessimistic time per call, by which a run skips a case over its limit: the declared
        `estimate_s`; else the cost model's `cost_s` times cost.ESTIMATE_SAFETY, where the model
        prices the device (the CPU; on a GPU, the cupy-only kernels); else None. A selector is
        bounded by the algorithm it picks. No measurement enters it."""
        if self.resolve is not None:
            try:
                return self.resolve(problem, backend).bound_s(problem, backend)
            except ValueError:  # nothing supports it: why_not says so first
                return None
        if self.estimate_s is not None:
            return self.estimate_s(problem)
        priced = backend not in GPU_BACKENDS or set(self.backends) <= set(GPU_BACKENDS)
        if self.cost_s is None or not priced:
            return None
        return cost.ESTIMATE_SAFETY * self.cost_s(problem)

    def covers(self, problem: Problem, backend: str = "numpy") -> bool:
        """Whether the declaration covers `problem` on `backend` (op, backends, checks), whether
        or not that backend and the requirements are installed here."""
        return (problem.op == self.op and backend in self.backends
                and self.failed_check(problem) is None)

    def failed_check(self, problem: Problem) -> str | None:
        for check in self.checks:
            reason = check(problem)
            if reason:
                return reason
        return None

    def missing_requirement(self) -> str | None:
        for module in self.requires:
            try:
                found = importlib.util.find_spec(module) is not None
            except ModuleNotFoundError:  # a dotted name whose parent package is missing
                found = False
            if not found:
                return f"needs {module}, which is not installed"
        return None


_REGISTRY: dict[tuple[str, str], Algorithm] = {}
_generation = 0  # counts changes, so that caches of choices (auto) know when they are stale
_PLUGIN_ERRORS: dict[str, str] = {}
_loaded = False


def register(
    op: str, name: str, backends: tuple[str, ...] = ("numpy",), **declaration: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: ``@register("conv2d", "im2col", checks=(...), workspace_bytes=...)``."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        add(Algorithm(op=op, name=name, fn=fn, backends=tuple(backends), **declaration))
        return fn

    return decorate


def add(algorithm: Algorithm) -> None:
    key = (algorithm.op, algorithm.name)
    if key in _REGISTRY:
        raise ValueError(f"algorithm {algorithm.name!r} is already registered for {algorithm.op}")
    _REGISTRY[key] = algorithm
    _changed()


def _changed() -> None:
    global _generation
    _generation += 1


def generation() -> int:
    """A number that changes whenever the registry does."""
    return _generation


def replace(algorithm: Algorithm) -> Algorithm:
    """Swap in a new declaration for a registered name, keeping its place; returns the old one."""
    key = (algorithm.op, algorithm.name)
    old = _REGISTRY[key]
    _REGISTRY[key] = algorithm
    _changed()
    return old


def remove(op: str, name: str) -> None:
    """Take an algorithm out of the registry (for plugins that replace one, and for tests)."""
    del _REGISTRY[(op, name)]
    _changed()


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    importlib.import_module("convbench.algorithms")
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry.load()
        except Exception as error:  # a broken plugin must not take the built-ins down
            _PLUGIN_ERRORS[entry.name] = f"{type(error).__name__}: {error}"


def plugin_errors() -> dict[str, str]:
    _load()
    return dict(_PLUGIN_ERRORS)


def all_algorithms(op: str | None = None) -> list[Algorithm]:
    _load()
    return [a for a in _REGISTRY.values() if op is None or a.op == op]


def ops() -> list[str]:
    return sorted({a.op for a in all_algorithms()})


def get(op: str, name: str) -> Algorithm:
    _load()
    try:
        return _REGISTRY[(op, name)]
    except KeyError:
        known = ", ".join(a.name for a in all_algorithms(op)) or "none"
        raise ValueError(f"algo={name!r} is not a registered {op} algorithm (known: {known})")


def algorithms(op: str = "conv2d", backend: str = "numpy") -> list[str]:
    """Names of the algorithms registered for `op` that declare `backend`."""
    if op not in ops():
        raise ValueError(f"op={op!r} is not a known op (known: {', '.join(ops())})")
    return [a.name for a in all_algorithms(op) if backend in a.backends]
