"""algo="auto": choose per problem, and only ever an algorithm that supports it.

Two sources, in order:
1. a tuning table of measured winners for this machine (`convbench tune SUITE` writes it, as
   cuDNN's algorithm search does), looked up by the problem's descriptor;
2. the cost rule below, from the measurements in the README:
   - 1x1 kernels are GEMMs: im2col (no copy at stride 1);
   - 3x3, stride 1, dense, ungrouped, with C and K >= 64: Winograd F(4x4, 3x3), 4x fewer
     multiplies, while the transforms stay cheap next to the channel GEMMs;
   - stride-1 kernels of 7x7 and more: FFT, whose cost does not grow with the kernel;
   - otherwise im2col, or direct when im2col's column buffer would pass AUTO_IM2COL_LIMIT_BYTES.
   On CuPy arrays the CUDA versions (winograd_f4x3_cuda, im2col_cuda) come first: the same
   mathematics with fused kernels (README: GPU backends).
The reference (torch) and the teaching loops (direct_naive) are picked only when nothing else
supports the problem.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from convbench.backends import BACKENDS, backend_of
from convbench.problems import ConvProblem, PoolProblem
from convbench.algorithms.registry import Algorithm, Unsupported, all_algorithms, generation, register

AUTO_IM2COL_LIMIT_BYTES = 1 << 30
LAST_RESORT = ("torch", "direct_naive", "naive")


def rule(p: ConvProblem) -> list[str]:
    """The cost rule's preference order for `p` (names that are not registered are passed over).
    Backward and transposed convolutions follow the same rule; pooling takes `windowed`."""
    if isinstance(p, PoolProblem):
        return ["windowed"]
    dense = p.stride == (1, 1) and p.dilation == (1, 1)
    if (p.r, p.s) == (1, 1):
        return ["im2col_cuda", "im2col", "direct"]
    if dense and p.groups == 1 and (p.r, p.s) == (3, 3) and min(p.c, p.k) >= 64:
        return ["winograd_f4x3_cuda", "winograd_f4x3", "im2col_cuda", "im2col", "direct"]
    if dense and min(p.r, p.s) >= 7:
        return ["fft", "im2col_cuda", "im2col", "direct"]
    if p.im2col_bytes > AUTO_IM2COL_LIMIT_BYTES:
        return ["direct", "fft", "im2col"]
    return ["im2col_cuda", "im2col", "direct"]


def tuning_path(threads: int) -> Path:
    from convbench.measure.machine import cache_dir, fingerprint

    return cache_dir() / f"tuning-{fingerprint(threads)}.json"


@functools.cache
def tuned_winners(path: Path) -> dict[str, str]:
    return json.loads(path.read_text()) if path.exists() else {}


def _tuned(p: ConvProblem) -> list[str]:
    from threadpoolctl import threadpool_info

    threads = max((lib["num_threads"] for lib in threadpool_info()), default=1)
    winner = tuned_winners(tuning_path(threads)).get(str(p))
    return [winner] if winner else []


def candidates(p: ConvProblem, backend: str = "numpy") -> list[Algorithm]:
    """Every registered algorithm in the order auto tries them for `p` on `backend`. The tuning
    table holds winners measured on numpy, so it speaks for numpy arrays only."""
    registered = {a.name: a for a in all_algorithms(p.op) if a.name != "auto"}
    tuned = _tuned(p) if backend == "numpy" else []
    ordered = [n for n in tuned + rule(p) if n in registered]
    rest = [n for n in registered if n not in ordered and n not in LAST_RESORT]
    last = [n for n in LAST_RESORT if n in registered]
    return [registered[n] for n in dict.fromkeys(ordered + rest + last)]


def choose(problem: ConvProblem, backend: str = "numpy") -> Algorithm:
    """The first candidate that supports the problem on `backend`. Cached per problem and
    registry state, so that timing "auto" times the chosen algorithm, not the choosing."""
    return _choose(problem, backend, generation())


@functools.lru_cache(maxsize=4096)
def _choose(problem: ConvProblem, backend: str, registry_generation: int) -> Algorithm:
    for algorithm in candidates(problem, backend):
        if algorithm.why_not(problem, backend) is None:
            return algorithm
    raise Unsupported(f"no registered {problem.op} algorithm supports {problem} on {backend}")


def forget() -> None:
    """Drop cached choices and tuning tables (after `convbench tune` writes a new table)."""
    _choose.cache_clear()
    tuned_winners.cache_clear()


def _nothing_supports(p: ConvProblem) -> str | None:
    try:
        choose(p)
    except Unsupported as error:
        return str(error)
    return None


@register("conv2d", "auto", backends=BACKENDS, checks=(_nothing_supports,), resolve=choose,
          summary="picks per problem: tuned winner for this machine, else the cost rule")
def conv2d_auto(p: ConvProblem, *arrays: Any, **options: Any) -> Any:
    return choose(p, backend_of(arrays[0])).fn(p, *arrays, **options)

