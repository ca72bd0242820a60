"""The one argument checker of the library API: arrays, dtypes, flags, batching, layouts, and
the algorithm that runs. Every argument is checked before any work starts; algorithms never
re-validate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from convbench.algorithms.auto import choose
from convbench.algorithms.registry import Algorithm, Unsupported, get
from convbench.problems import DTYPES, Problem


def check_array(name: str, a: object, ndims: tuple[int, ...]) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(a).__name__}")
    if a.ndim not in ndims:
        wanted = " or ".join(str(d) for d in ndims)
        raise ValueError(f"{name} must have {wanted} dimensions, got shape {a.shape}")
    if a.dtype.name not in DTYPES:
        raise ValueError(f"{name}.dtype must be float32 or float64, got {a.dtype}")
    return a


def check_same_dtype(**arrays: np.ndarray | None) -> None:
    named = {k: a.dtype for k, a in arrays.items() if a is not None}
    if len(set(named.values())) > 1:
        listed = ", ".join(f"{k}.dtype={v}" for k, v in named.items())
        raise ValueError(f"{', '.join(arrays)} must share one dtype, got {listed}")


def pick(problem: Problem, algo: str) -> Algorithm:
    """The algorithm `algo` names (or auto's choice) for `problem`, refusing with its reason."""
    algorithm = choose(problem) if algo == "auto" else get(problem.op, algo)
    reason = algorithm.why_not(problem, "numpy")
    if reason:
        raise Unsupported(f"{algorithm.name}: {reason}")
    return algorithm


def run(problem: Problem, algo: str, *arrays: Any) -> Any:
    """`algo` on `problem`'s arrays. In channels-last memory an algorithm that takes
    channels-first only runs on a channels-first copy, and its result goes back to channels
    last (the harness never converts: there a layout is a case)."""
    try:
        algorithm = pick(problem, algo)
    except Unsupported:
        if problem.layout != "nhwc":
            raise
        algorithm = None  # converted below, outside this handler (no chained traceback)
    if algorithm is not None:
        return algorithm.run(problem, *arrays)
    first = replace(problem, layout="nchw")
    algorithm = pick(first, algo)  # refuses with the reason that is not the layout
    copies = tuple(None if a is None else np.ascontiguousarray(a) for a in arrays)
    return _each(algorithm.run(first, *copies), to_channels_last)


def _each(result: Any, change: Callable[[np.ndarray], np.ndarray]) -> Any:
    if isinstance(result, tuple):
        return tuple(change(a) if a is not None and a.ndim >= 3 else a for a in result)
    return change(result)


def channels_last(x: np.ndarray) -> bool:
    """Whether x (N, C, *spatial) lies channels last in memory (torch's channels_last), as a
    view of an (N, *spatial, C) array."""
    if x.ndim < 3 or x.shape[1] == 1 or x.flags.c_contiguous:
        return False
    return bool(np.moveaxis(x, 1, -1).flags.c_contiguous)


def to_channels_last(y: np.ndarray) -> np.ndarray:
    """y (N, C, *spatial) with channels last in memory, as torch returns a channels-last input's
    result."""
    if y.ndim < 3 or channels_last(y):
        return y
    return np.moveaxis(np.ascontiguousarray(np.moveaxis(y, 1, -1)), -1, 1)


def layout_of(x: np.ndarray) -> str:
    return "nhwc" if channels_last(x) else "nchw"


SizesArg = int | tuple[int, ...]
IntPair = SizesArg


def batched(x: np.ndarray, rank: int = 2) -> np.ndarray:
    """torch's unbatched form (one dimension fewer) as a batch of one."""
    return x[None] if x.ndim == rank + 1 else x


def unbatched(y: np.ndarray, like: np.ndarray, rank: int = 2) -> np.ndarray:
    """`y` without its batch axis when `like` came unbatched."""
    return y[0] if like.ndim == rank + 1 else y


def flag(name: str, value: object) -> bool:
    """A bool argument (numpy's too); anything else is refused, naming the argument."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be a bool, got {value!r}")  # noqa: TRY004 - the API's rule
    return bool(value)


def batch_of(x: np.ndarray, rank: int) -> int:
    """N of a batched input, 1 of an unbatched one."""
    return 1 if x.ndim == rank + 1 else x.shape[0]
