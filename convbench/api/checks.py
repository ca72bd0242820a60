"""The one argument checker of the library API: arrays, dtypes, flags, batching, and the
algorithm that runs. Every argument is checked before any work starts; algorithms never
re-validate."""

from __future__ import annotations

import numpy as np

from convbench.algorithms.auto import choose
from convbench.problems import DTYPES, Problem
from convbench.algorithms.registry import Algorithm, Unsupported, get


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




IntPair = int | tuple[int, int]


def batched(x: np.ndarray) -> np.ndarray:
    """torch's unbatched form (one dimension fewer) as a batch of one."""
    return x[None] if x.ndim == 3 else x


def unbatched(y: np.ndarray, like: np.ndarray) -> np.ndarray:
    """`y` without its batch axis when `like` came unbatched."""
    return y[0] if like.ndim == 3 else y


def flag(name: str, value: object) -> bool:
    """A bool argument (numpy's too); anything else is refused, naming the argument."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be a bool, got {value!r}")  # noqa: TRY004 - the API's rule
    return bool(value)
