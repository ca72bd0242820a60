"""The GEMM engine of numpy arrays: numpy's BLAS (OpenBLAS in numpy's wheels) or torch's CPU
GEMM (MKL in torch's x86 wheels), whichever `convbench machine` measured faster here.

Every algorithm is a few array stages around GEMMs, and on one machine two BLAS libraries can
differ by a fifth on the same product: on the 2-core Xeon (AVX-512) this project was measured on,
torch's GEMM took 0.75-1.0 of numpy's time on every shape the algorithms issue (a 1024^3 SGEMM
249 against 199 GFLOP/s), and torch's own im2col beat convbench's on most 1x1 layers by its
GEMM alone. An algorithm should be judged with the faster library, so the algorithms' large
products of numpy arrays go through `matmul` here, which hands them to torch zero-copy
(torch.from_numpy, the result written into a numpy array) when the engine is torch.

The engine is, in order: CONVBENCH_GEMM ("numpy" or "torch"; empty is unset); else the
calibration record of this machine at the current thread count (`convbench machine` times
the large and the narrow GEMMs with both and picks torch only when its rates' geometric mean is
at least 5% higher: measure.calibrate.engine_rates, pick_engine); else numpy. Runs record it
in their meta.json. Products under MIN_MACS multiply-adds stay with numpy whatever the engine
(a call through torch costs a few microseconds more), as do operands torch cannot view (negative strides, dtypes other than
float32 and float64, vectors) and an `out` that is not C-contiguous or overlaps an operand.
The algorithms call it for their channel GEMMs (convbench.backends.xp.matmul, matmul_into);
their transforms' small-k products (k = alpha or R*S) stay numpy's `@`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from convbench.backends import compiled

SWITCH = "CONVBENCH_GEMM"
ENGINES = ("numpy", "torch")
MIN_MACS = 1 << 22  # 4M multiply-adds: about 40 us at this machine's SGEMM rate
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_engine: str | None = None  # set_engine's choice, above the calibration's
_generation = 0  # bumped where the engine may change: what is cached per engine keys on it


def check(value: str) -> str:
    """`value` if it names an engine; ValueError naming CONVBENCH_GEMM and the value otherwise."""
    if value not in ENGINES:
        raise ValueError(f"{SWITCH}={value!r}: expected one of {', '.join(ENGINES)}")
    return value


def set_engine(name: str | None) -> str | None:
    """The engine from now on (None: back to the environment and the calibration); returns the
    setting it replaces."""
    global _engine, _generation
    previous, _engine = _engine, (check(name) if name is not None else None)
    _generation += 1
    return previous


@contextlib.contextmanager
def pinned(name: str) -> Iterator[str]:
    """`name` for the block, in this process (set_engine) and in the processes it starts
    (CONVBENCH_GEMM), so that a run's timing processes use the engine its meta.json records;
    both restored after."""
    previous, before = set_engine(name), os.environ.get(SWITCH)
    os.environ[SWITCH] = name
    try:
        yield name
    finally:
        set_engine(previous)
        if before is None:
            os.environ.pop(SWITCH, None)
        else:
            os.environ[SWITCH] = before


def resolved(threads: int | None = None) -> tuple[str, str]:
    """(the engine numpy products take now, where it comes from in a phrase: for meta.json);
    see the module's docstring. `threads` defaults to the compiled kernels' thread count, which
    a run pins to its own."""
    if _engine is not None:
        return _engine, "set by convbench.backends.gemm.set_engine"
    chosen = os.environ.get(SWITCH)
    if chosen:
        return check(chosen), f"{SWITCH}={chosen}"
    return calibrated(compiled.threads() if threads is None else threads)


def engine(threads: int | None = None) -> str:
    """The engine numpy products take now (resolved)."""
    return resolved(threads)[0]


def source(threads: int | None = None) -> str:
    """Where the engine comes from (resolved)."""
    return resolved(threads)[1]


def calibrated(threads: int) -> tuple[str, str]:
    """(engine, why) from this machine's calibration at `threads`; numpy where there is none.
    Read once per thread count and cache directory (finding the record takes 0.5 ms); a new
    calibration in this process is seen after forget()."""
    return _calibrated(threads, os.environ.get("CONVBENCH_CACHE"))


def forget() -> None:
    """Read the calibration again at the next product (after a new one is cached)."""
    global _generation
    _calibrated.cache_clear()
    _generation += 1


def generation() -> int:
    """A number that set_engine (so pinned) and forget change: a cache of what depends on the
    engine (auto's choices, by way of the tuning table) keys on it, where resolving the engine
    takes microseconds (reading CONVBENCH_GEMM alone took 1 us here, against 10-17 us for a
    call of auto on the smoke suite's 1x1 in the gate's runs). A process that sets
    CONVBENCH_GEMM itself calls forget after, or uses pinned."""
    return _generation


@functools.cache
def _calibrated(threads: int, cache: str | None) -> tuple[str, str]:
    from convbench.measure import calibrate

    record, found = calibrate.load(threads)
    if record is None:
        return "numpy", f"numpy: {found}"
    name = record.get("gemm_engine", "numpy")
    if name not in ENGINES:
        return "numpy", f"numpy: calibration names an unknown GEMM engine {name!r}"
    return name, f"{name}: {found}"


def _viewable(a: np.ndarray) -> bool:
    return a.dtype in _DTYPES and all(s >= 0 and s % a.itemsize == 0 for s in a.strides)


def _through_torch(a: Any, b: Any, out: Any) -> bool:
    """Whether a @ b, a large product (matmul), goes to torch."""
    if type(a) is not np.ndarray or type(b) is not np.ndarray or b.shape[-2] != a.shape[-1]:
        return False  # a mismatch: numpy raises its own error
    if engine() != "torch" or not (a.dtype == b.dtype and _viewable(a) and _viewable(b)):
        return False
    if out is None:
        return True
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    # torch reads while it writes: an `out` over an operand's memory stays with numpy, which
    # buffers (one that overlapped gave errors of 1e3 on 512^2 products)
    return (type(out) is np.ndarray and out.dtype == a.dtype and out.flags.c_contiguous
            and out.flags.writeable and out.shape == (*batch, a.shape[-2], b.shape[-1])
            and _viewable(out) and not np.may_share_memory(out, a)
            and not np.may_share_memory(out, b))


def matmul(a: Any, b: Any, out: Any = None) -> Any:
    """np.matmul(a, b, out=out) of numpy arrays, by the engine where the product is large:
    MIN_MACS multiply-adds or more, and operands of two axes or more. With an `out`, its size
    times k is the product's size; without, the larger of a.size * n and b.size * m (exact
    where one batch is a broadcast of the other, as in every product the algorithms issue).
    Decided first, in line and before the engine: every tiny call asks."""
    if out is None:
        if a.ndim < 2 or b.ndim < 2 or (a.size * b.shape[-1] < MIN_MACS
                                         and b.size * a.shape[-2] < MIN_MACS):
            return np.matmul(a, b)
    elif (type(out) is not np.ndarray or a.ndim < 2 or b.ndim < 2
          or out.size * a.shape[-1] < MIN_MACS):
        return np.matmul(a, b, out=out)
    if not _through_torch(a, b, out):
        return np.matmul(a, b) if out is None else np.matmul(a, b, out=out)
    import torch

    if not (a.flags.writeable and b.flags.writeable):  # read, never written: torch's warning
        with warnings.catch_warnings():              # that it could be does not apply
            warnings.simplefilter("ignore", UserWarning)
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    else:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    if out is None:  # allocated by numpy, so that tracemalloc counts it as it does numpy's
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        out = np.empty((*batch, a.shape[-2], b.shape[-1]), dtype=a.dtype)
    torch.matmul(ta, tb, out=torch.from_numpy(out))
    return out

