"""The algorithm registry: one dict, filled by decorators in convbench.algorithms and by plugins.

An algorithm is a function plus a declaration of what it can do. `why_not(problem, backend)`
returns one human-readable sentence (or None); the same sentence is what results, the CLI and
pytest skips show. Its `role` says what `algo="auto"` may do with it, and `cost_s` is its own
model of its time, by which auto ranks the candidates. Third-party packages register through the
entry-point group ``convbench.algorithms``: each entry point names a module whose import calls
`register`.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from convbench.algorithms import cost
from convbench.algorithms.lowering import Lowered, lower
from convbench.backends import GPU_BACKENDS, backend_why_not, compiled
from convbench.problems import Problem
from convbench.problems.ops import OPS, family_op, op_rank

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
    # A floor by rank where rounding grows with it (Winograd's 3-D tiles); else the one above.
    rank_floor_eps: dict[int, float] = field(default_factory=dict)
    # What the function takes natively; convbench.algorithms.lowering bridges the rest (rank 1
    # on a 2-D algorithm, padding that differs before and after) or says why it cannot.
    ranks: tuple[int, ...] = (2,)
    per_side: bool = False
    layouts: tuple[str, ...] = ("nchw",)
    summary: str = ""
    plugin: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"algorithm {self.name!r} ({self.op}): role={self.role!r} is not "
                             f"one of {', '.join(ROLES)}")

    def lowered(self, problem: Problem) -> Lowered | str:
        """The problem this algorithm's function receives for `problem`, and the bridge to it;
        or why there is none (convbench.algorithms.lowering)."""
        return _lowered(problem, self.ranks, self.per_side, self.layouts)

    def floor_eps(self, problem: Problem) -> float:
        """The tolerance floor (units of eps) for `problem`, at the rank the function runs it."""
        lowered = self.lowered(problem)
        rank = getattr(lowered if isinstance(lowered, str) else lowered.problem, "rank", None)
        return self.rank_floor_eps.get(rank, self.tolerance_floor_eps)  # type: ignore[arg-type]

    def why_not(self, problem: Problem, backend: str = "numpy") -> str | None:
        """Why this algorithm cannot run `problem` on `backend`, as one sentence; None if it can."""
        if family_op(problem.op) != self.op:
            return f"{self.name} implements {self.op}, not {problem.op}"
        if backend not in self.backends:
            return f"runs on {', '.join(self.backends)} only, not {backend}"
        return (backend_why_not(backend) or self.missing_requirement()
                or self.failed_check(problem))

    def bind(self, problem: Problem) -> Callable[..., Any]:
        """fn(problem, *arrays, **options) for `problem`, bridged as `lowered` says."""
        lowered = self.lowered(problem)
        if isinstance(lowered, str):
            raise Unsupported(f"{self.name}: {lowered}")
        return lowered.bind(self.fn)

    def run(self, problem: Problem, *arrays: Any, **options: Any) -> Any:
        """The algorithm on `problem`'s arrays (the op's inputs, in the oracle's order)."""
        return self.bind(problem)(problem, *arrays, **options)

    def prepared(self, problem: Problem, *arrays: Any) -> Any:
        """The `prepare` state for `problem` (its weights' transform), bridged alike."""
        lowered = self.lowered(problem)
        assert self.prepare is not None and not isinstance(lowered, str)
        inputs = lowered.inputs(arrays) if lowered.inputs else arrays
        return self.prepare(lowered.problem, *inputs)

    def workspace(self, problem: Problem, backend: str = "numpy") -> int | None:
        """The declared workspace of `problem` on `backend`'s arrays (the compiled kernels
        take numpy's only: compiled.arrays_of), with the bridge's explicit padding."""
        lowered = self.lowered(problem)
        if self.workspace_bytes is None or isinstance(lowered, str):
            return None
        with compiled.arrays_of(backend):
            declared = self.workspace_bytes(lowered.problem)
        if not lowered.padded_elements:
            return declared
        return declared + lowered.padded_elements * lowered.problem.itemsize

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
        lowered = self.lowered(problem)
        if isinstance(lowered, str):
            return None
        if self.estimate_s is not None:
            return self.estimate_s(lowered.problem)
        priced = backend not in GPU_BACKENDS or set(self.backends) <= set(GPU_BACKENDS)
        if self.cost_s is None or not priced:
            return None
        return cost.ESTIMATE_SAFETY * self.modelled_s(problem, backend)

    def modelled_s(self, problem: Problem, backend: str = "numpy") -> float:
        """`cost_s` of the problem the function receives on `backend`'s arrays
        (compiled.arrays_of), with the bridge's explicit padding."""
        lowered = self.lowered(problem)
        assert self.cost_s is not None and not isinstance(lowered, str)
        with compiled.arrays_of(backend):
            modelled = self.cost_s(lowered.problem)
        if not lowered.padded_elements:
            return modelled
        return modelled + cost.copy_s(lowered.padded_elements, lowered.problem.itemsize)

    def covers(self, problem: Problem, backend: str = "numpy") -> bool:
        """Whether the declaration covers `problem` on `backend` (op, backends, checks), whether
        or not that backend and the requirements are installed here."""
        return (family_op(problem.op) == self.op and backend in self.backends
                and self.failed_check(problem) is None)

    def failed_check(self, problem: Problem) -> str | None:
        """The lowering's reason, or the first check that fails on the lowered problem."""
        lowered = self.lowered(problem)
        if isinstance(lowered, str):
            return lowered
        for check in self.checks:
            reason = check(lowered.problem)
            if reason:
                lifted = getattr(lowered.problem, "rank", None) != getattr(problem, "rank", None)
                return f"{reason} (as a 2-D image of height 1)" if lifted else reason
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


@functools.lru_cache(maxsize=4096)
def _lowered(problem: Problem, ranks: tuple[int, ...], per_side: bool,
             layouts: tuple[str, ...]) -> Lowered | str:
    return lower(problem, ranks, per_side, layouts)


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
    """The registered algorithms (of `op`'s family at any rank: conv3d lists conv2d's)."""
    _load()
    family = None if op is None else family_op(op)
    return [a for a in _REGISTRY.values() if family is None or a.op == family]


def ops() -> list[str]:
    """Every op some registered algorithm runs, at each rank it takes (natively or bridged)."""
    return [op.name for op in OPS if any(takes_rank(a, op.rank)
                                           for a in all_algorithms(op.name))]


def takes_rank(algorithm: Algorithm, rank: int) -> bool:
    """Whether the algorithm's declaration reaches `rank` (rank 1 through a 2-D algorithm)."""
    return rank in algorithm.ranks or (rank == 1 and 2 in algorithm.ranks)


def get(op: str, name: str) -> Algorithm:
    _load()
    try:
        return _REGISTRY[(family_op(op), name)]
    except KeyError:
        known = ", ".join(a.name for a in all_algorithms(op)) or "none"
        raise ValueError(f"algo={name!r} is not a registered {op} algorithm (known: {known})")


def algorithms(op: str = "conv2d", backend: str = "numpy") -> list[str]:
    """Names of the algorithms registered for `op` that declare `backend`."""
    if op not in ops():
        raise ValueError(f"op={op!r} is not a known op (known: {', '.join(ops())})")
    rank = op_rank(op)
    return [a.name for a in all_algorithms(op) if backend in a.backends and takes_rank(a, rank)]
