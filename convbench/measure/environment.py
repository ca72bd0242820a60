"""What a run ran on: machine, libraries, BLAS and threads, commit. Written to meta.json."""

from __future__ import annotations

import ctypes
import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import psutil
from threadpoolctl import threadpool_info

LIBRARIES = ("convbench", "numpy", "scipy", "pandas", "torch", "threadpoolctl", "numba", "cupy")


def cache_dir() -> Path:
    """convbench's cache directory: $CONVBENCH_CACHE, default ~/.cache/convbench (the machine's
    peaks and calibration, the compiled kernels' generated sources)."""
    return Path(os.environ.get("CONVBENCH_CACHE") or Path.home() / ".cache" / "convbench")


def cpu_info() -> dict[str, Any]:
    info: dict[str, Any] = {"machine": platform.machine(), "model": platform.processor()}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name":
                info["model"] = value.strip()
            elif key == "flags":
                info["flags"] = [f for f in value.split() if f.startswith(("avx", "fma", "sse4"))]
                break
    info["logical_cores"] = os.cpu_count()
    info["usable_cores"] = usable_cpus()  # the affinity mask: what this process may run on
    info["physical_cores"] = psutil.cpu_count(logical=False)
    info["memory_bytes"] = psutil.virtual_memory().total
    return info


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask), else the machine's count: under a
    batch scheduler or a container a process may use fewer cores than the machine has."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def gpu_driver() -> str | None:
    """The NVIDIA driver version (nvidia-smi), for the fingerprint of a run on a CUDA backend."""
    try:
        query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
        found = subprocess.run(query, capture_output=True, text=True, timeout=10,
                               check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return found.strip().splitlines()[0] if found.strip() else None


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    providers = importlib.metadata.packages_distributions()  # cupy ships as cupy-cuda12x, ...
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(providers.get(name, [name])[0])
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def blas() -> list[dict[str, Any]]:
    """threadpoolctl's view of the loaded BLAS/OpenMP libraries: vendor, kernel, threads."""
    keep = ("user_api", "internal_api", "version", "architecture", "num_threads", "prefix")
    return [{k: lib.get(k) for k in keep} for lib in threadpool_info()]


def git_commit(path: Path) -> dict[str, Any]:
    """HEAD of the git work tree at `path` and whether tracked files differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=path, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": head, "dirty": bool(dirty.strip())}


def convbench_source() -> dict[str, Any]:
    """convbench's own version, and its commit when it runs from a git checkout of itself (an
    editable install): the code under test, wherever the command runs from."""
    root = Path(__file__).resolve().parents[2]  # convbench/measure/environment.py
    source = {"version": importlib.metadata.version("convbench"), "commit": None, "dirty": None}
    if (root / ".git").exists() and (root / "pyproject.toml").exists():
        source |= git_commit(root)
    return source


# Variables CI services set to the commit they build, read when no --commit is given.
COMMIT_VARIABLES: tuple[str, ...] = ("CONVBENCH_COMMIT", "GITHUB_SHA", "CI_COMMIT_SHA")


def project_commit(given: str | None = None) -> dict[str, Any] | None:
    """The commit of the user's project, only when asked: `--commit` (a ref resolved in the
    current directory's repository, else kept as written) or a variable CI sets."""
    ref = given or next((os.environ[v] for v in COMMIT_VARIABLES if os.environ.get(v)), None)
    if not ref:
        return None
    try:
        resolved = subprocess.run(["git", "rev-parse", "--verify", f"{ref}^{{commit}}"],
                                  capture_output=True, text=True, timeout=10, check=True)
        return {"commit": resolved.stdout.strip(), "ref": ref}
    except (OSError, subprocess.SubprocessError):
        return {"commit": ref, "ref": ref}


# glibc's mallopt parameters: large blocks from the heap rather than fresh mmaps, and freed
# memory kept, so that repeated calls reuse pages instead of faulting them in again.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
KEEP_BYTES = 1 << 30


def keep_freed_memory() -> dict[str, Any]:
    """Make this process's allocator behave like a framework's caching allocator: every
    algorithm's second and later calls reuse memory, and the page faults of first use stay in
    the untimed first call. Returns what was set (for meta.json); a no-op without glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        applied = (libc.mallopt(_M_MMAP_THRESHOLD, KEEP_BYTES) == 1
                   and libc.mallopt(_M_TRIM_THRESHOLD, 2 * KEEP_BYTES) == 1)
    except (OSError, AttributeError):
        applied = False
    return {"mallopt_keep_freed": applied, "mmap_threshold_bytes": KEEP_BYTES,
            "trim_threshold_bytes": 2 * KEEP_BYTES}


def collect(threads: int, commit: str | None = None) -> dict[str, Any]:
    """Everything a reader needs to reproduce or discount a run. Call after threads are set.
    `git` is the user's project commit, present only when asked (`commit` or a CI variable)."""
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "platform": platform.platform(),
        "cpu": cpu_info(),
        "threads": threads,
        "versions": versions(),
        "blas": blas(),
        "env": {k: v for k, v in os.environ.items()
                if k.startswith(("OPENBLAS_", "OMP_", "GOMP_", "KMP_", "MKL_", "GOTO", "NUMBA_",
                                 "CONVBENCH_COMPILED", "CONVBENCH_GEMM"))},
        "convbench": convbench_source(),
    } | ({"git": project} if (project := project_commit(commit)) else {})


def machine_fingerprint(meta: dict[str, Any]) -> str:
    """A short hash of what makes times comparable between runs (from a run's meta.json): CPU
    model, the cores this process may use (its affinity, not the machine's count), memory, threads,
    the BLAS kernels, and the GPU model and driver when a CUDA backend ran. Not the host name:
    two identical CI runners share a fingerprint."""
    cpu = meta.get("cpu") or {}
    cores = cpu.get("usable_cores", cpu.get("logical_cores"))  # older meta.json: the count
    identity: dict[str, Any] = {
        "cpu": [cpu.get("machine"), cpu.get("model"), cores, cpu.get("physical_cores")],
        "memory_gib": round((cpu.get("memory_bytes") or 0) / 2**30),
        "threads": meta.get("threads"),
        # the BLAS kernels in use, as a set: which copies a process happens to load varies
        "blas": sorted({f"{lib.get('internal_api')}:{lib.get('architecture')}"
                        for lib in meta.get("blas") or [] if lib.get("user_api") == "blas"}),
    }
    gpus = sorted(str(meta[k].get("device")) for k in ("torch_cuda", "cupy")
                  if isinstance(meta.get(k), dict))
    if gpus:  # only then: a CPU run's fingerprint does not depend on the GPU beside it
        identity["gpu"] = [gpus, meta.get("gpu_driver")]
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return digest[:12]
