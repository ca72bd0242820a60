"""numba, the compiler of convbench's compiled CPU kernels: loaded on first use, run on the
run's thread count, switched off with CONVBENCH_COMPILED=0.

Where numpy's array operations cannot reach memory bandwidth (the Winograd tile transforms,
winograd_nhwc_kernels.py), a kernel compiled by numba does the stage in one pass. The array-API
version of every such stage stays: it is what CuPy and torch arrays run, what runs where numba
is missing or switched off, and what the tests compare the kernels with.

Kernels are generated per transform and written into the cache directory (kernel_dir), where
numba keeps what it compiles: the first call on a machine compiles (seconds), later processes
load. They release the GIL and run on this module's thread pool (parallel): the count that
`pinned_threads` sets for BLAS and torch (set_threads), so that a run's `--threads` holds for
them too. A kernel that calls BLAS from those threads does so inside single_threaded_blas().
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

SWITCH = "CONVBENCH_COMPILED"  # "0": the array-API versions everywhere
# Problems of fewer multiply-adds run the array-API versions: loading numba and the kernels
# (about 0.5 s in a new process) and the thread hand-offs would cost more than they save, and a
# run of small cases (the smoke suite, the tests' subprocesses) does not load numba at all.
MIN_MACS = 1 << 24

_threads: int | None = None  # the run's thread count, once pinned_threads has set one
# The backend whose arrays a model describes (arrays_of): the kernels take numpy arrays only.
_BACKEND: contextvars.ContextVar[str] = contextvars.ContextVar("convbench_compiled_backend",
                                                               default="numpy")


def enabled() -> bool:
    """Whether compiled kernels run: numba installed and CONVBENCH_COMPILED not "0" (numba
    is not imported to answer)."""
    return os.environ.get(SWITCH, "1") != "0" and _installed()


def worth(macs: int) -> bool:
    """Whether a problem of `macs` multiply-adds takes the compiled kernels (enabled, and at
    least MIN_MACS), on the arrays of the backend in force (arrays_of; numpy by default)."""
    return macs >= MIN_MACS and _BACKEND.get() == "numpy" and enabled()


@contextlib.contextmanager
def arrays_of(backend: str) -> Iterator[None]:
    """Within the block, a model asks about `backend`'s arrays: worth is False for any other
    backend than numpy's, so that the workspace and cost models of a torch or CuPy row
    describe the array version those arrays run, not the kernels."""
    token = _BACKEND.set(backend)
    try:
        yield
    finally:
        _BACKEND.reset(token)


@functools.cache
def _installed() -> bool:
    return importlib.util.find_spec("numba") is not None


def version() -> str | None:
    """numba's version where it is installed."""
    if not _installed():
        return None
    return importlib.metadata.version("numba")


def kernel_dir() -> Path:
    """Where generated kernel modules (and numba's cache of them) are kept."""
    from convbench.measure.environment import cache_dir

    return cache_dir() / "kernels"


def set_threads(threads: int | None) -> int | None:
    """The kernels' thread count from now on (None: one per usable core); returns the setting
    it replaces."""
    global _threads
    previous, _threads = _threads, threads
    return previous


def threads() -> int:
    """How many threads a kernel runs on now."""
    return _threads if _threads is not None else _usable_cores()


@functools.cache
def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@functools.cache
def module(stem: str, text: str) -> Any:
    """The kernel module whose source is `text`: written once into kernel_dir() (named by
    `stem` and its source's hash, so a changed generator writes a new file), imported from
    there under a name of its own, so that numba caches what it compiles beside it and loads
    it in the next process (its cache imports the module by that name)."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    folder = kernel_dir()
    path = folder / f"{stem}_{digest}.py"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(text)
        partial.replace(path)  # atomic: a concurrent process reads a whole file or none
    name = f"convbench._kernels.{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[name] = loaded
    spec.loader.exec_module(loaded)
    return loaded


@functools.cache
def _pool(size: int) -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(size, thread_name_prefix="convbench-kernel")


def parallel(task: Callable[[int, int, int], Any], count: int, workers: int) -> None:
    """task(worker, first, last) for `workers` contiguous runs [first, last) of range(count),
    the calling thread taking the first run and the pool's threads the others (the kernels
    release the GIL); returns when all are done, raising the first error."""
    workers = max(1, min(workers, count))
    bounds = [(q * count // workers, (q + 1) * count // workers) for q in range(workers)]
    if workers == 1:
        task(0, *bounds[0])
        return
    pool = _pool(workers - 1)
    futures = [pool.submit(task, q, *bounds[q]) for q in range(1, workers)]
    try:
        task(0, *bounds[0])
    finally:
        for future in futures:
            future.result()


@functools.cache
def _blas_controller() -> Any:
    """threadpoolctl's handle on the BLAS libraries, numba's own (scipy's) among them."""
    import scipy.linalg.cython_blas  # noqa: F401  (numba's np.dot calls this BLAS)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Every BLAS library on one thread for the duration (a kernel's threads each call it)."""
    with _blas_controller().limit(limits=1):
        yield
