"""algo="auto": choose per problem, and only ever an algorithm that supports it.

auto knows no algorithm by name: it reads what each one declares. In order:
1. a tuning table of measured winners for this machine and GEMM engine (`convbench tune SUITE`
   writes it, as cuDNN's algorithm search does), looked up by the problem's descriptor;
2. every algorithm with role "candidate" whose declaration covers the problem on the backend,
   cheapest first by its own cost model (`cost_s`, convbench.algorithms.cost), except that
   among those level with the cheapest (LEVEL) the least rounding comes first; those that
   declare no cost come after, in registration order. The costs are priced with this machine's
   rates at the current thread count when `convbench machine` has calibrated them
   (convbench.measure.calibrate; the GEMMs at the rates of the GEMM engine in force, which the
   calibration measures for each engine), else with cost.DEFAULTS; a model set with cost.set_machine
   wins over both. `explain` says which priced a problem;
3. the reference (role "reference"), then the teaching loops ("teaching"). Selectors ("selector",
   auto itself) are never candidates.
An algorithm runs on the backends it declares, so on CuPy arrays only the CuPy-capable ones
are ranked.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from convbench.algorithms import cost
from convbench.backends import BACKENDS, backend_of, gemm
from convbench.problems import LAYOUTS, RANKS, Problem
from convbench.algorithms.registry import Algorithm, Unsupported, all_algorithms, generation
from convbench.algorithms.registry import register

# The roles auto falls back through, in order (registry.ROLES); a selector it never picks.
FALLBACK_ROLES = ("candidate", "reference", "teaching")
# Candidates whose costs are within this fraction of the cheapest are level: the cost model's
# typical error on the README's reference runs is about 12%. Among level candidates the one that
# declares the least rounding (tolerance_floor_eps) comes first, so that a near-tie in the model
# never trades accuracy for a gain it cannot show.
LEVEL = 0.10

Rank = tuple[int, int, float, float]


def tuning_path(threads: int, engine: str | None = None) -> Path:
    """This machine's tuning table at `threads` for the GEMM engine `engine` (default: the one
    in force, gemm.engine): winners measured with one engine's GEMMs do not speak for the
    other's. numpy's table keeps the name tables had before the engine existed, when every
    table was measured with numpy's GEMM."""
    from convbench.measure.machine import cache_dir, fingerprint

    engine = engine or gemm.engine(threads)
    suffix = "" if engine == "numpy" else f"-{engine}"
    return cache_dir() / f"tuning-{fingerprint(threads)}{suffix}.json"


@functools.cache
def tuned_winners(path: Path) -> dict[str, str]:
    return json.loads(path.read_text()) if path.exists() else {}


def _threads() -> int:
    from threadpoolctl import threadpool_info

    return max((lib["num_threads"] for lib in threadpool_info()), default=1)


def _tuned(p: Problem, threads: int) -> list[str]:
    winner = tuned_winners(tuning_path(threads)).get(str(p))
    return [winner] if winner else []


def calibrated_model(threads: int, engine: str | None = None) -> tuple[cost.MachineModel, str]:
    """The model `convbench machine` calibrated on this machine at `threads`, its GEMMs priced
    for `engine` (default: the GEMM engine in force, gemm.engine), with a phrase on where it
    came from; the defaults, and why, when there is none or it cannot be used."""
    return _calibrated_model(threads, engine or gemm.engine(threads))


@functools.cache
def _calibrated_model(threads: int, engine: str) -> tuple[cost.MachineModel, str]:
    from convbench.measure import calibrate

    record, source = calibrate.load(threads)
    if record is None:
        return cost.DEFAULTS, f"default rates: {source}"
    try:
        rates, which = calibrate.rates_for(record, engine)
        return cost.from_rates(rates), f"rates {source}{which}"
    except (ValueError, TypeError) as error:
        return cost.DEFAULTS, f"default rates: calibration unusable: {error}"


def calibrate(threads: int) -> dict[str, object]:
    """`convbench machine`'s calibration record at `threads`: measure.calibrate's rates and
    the compiled kernels' loop rate (measured by the kernels' module, a layer above measure)."""
    from convbench.algorithms.conv import winograd_nhwc_kernels
    from convbench.measure import calibrate as rates

    return rates.calibrate(threads, {"compiled_flops_per_s": winograd_nhwc_kernels.loop_rate})


def machine_model(threads: int | None = None) -> tuple[cost.MachineModel, str]:
    """The model auto prices with: one set by cost.set_machine, else this machine's calibrated
    one at `threads` (default: the current thread count), else the defaults."""
    if cost.MACHINE is not cost.DEFAULTS:
        return cost.MACHINE, "rates set by cost.set_machine"
    return calibrated_model(_threads() if threads is None else threads)


def never_tuned() -> set[str]:
    """Names that `convbench tune` leaves out: what is not a candidate for some op (the
    references, the teaching loops, the selectors)."""
    return {a.name for a in all_algorithms() if a.role != "candidate"}


def _rank(algorithm: Algorithm, cost_s: float | None, cheapest: float, p: Problem) -> Rank:
    """The sort key of an algorithm that covers the problem: its role; then, if it is a
    candidate level with the cheapest, the rounding it declares; then its cost. Without a cost it
    comes after those with one, in registration order (the sort is stable)."""
    role = FALLBACK_ROLES.index(algorithm.role)
    if cost_s is None:
        return (role, 2, 0.0, 0.0)
    if algorithm.role == "candidate" and cost_s <= cheapest * (1 + LEVEL):
        return (role, 0, algorithm.floor_eps(p), cost_s)
    return (role, 1, 0.0, cost_s)


def _priced(p: Problem, backend: str, model: cost.MachineModel
            ) -> list[tuple[Algorithm, float | None]]:
    """(algorithm, modelled time or None) of each algorithm that covers `p` on `backend`, in
    auto's order: by role and cost priced with `model`; no tuning table."""
    covering = [a for a in all_algorithms(p.op)
                if a.role in FALLBACK_ROLES and a.covers(p, backend)]
    with cost.priced_by(model):
        costs = {a.name: a.modelled_s(p, backend) if a.cost_s else None for a in covering}
    cheapest = min((costs[a.name] for a in covering
                    if a.role == "candidate" and a.cost_s), default=0.0)
    order = sorted(covering, key=lambda a: _rank(a, costs[a.name], cheapest, p))  # stable
    return [(a, costs[a.name]) for a in order]


def ranked(p: Problem, backend: str = "numpy",
           model: cost.MachineModel | None = None) -> list[Algorithm]:
    """The algorithms whose declarations cover `p` on `backend`, by role and cost priced with
    `model` (default: machine_model()); no tuning table."""
    return [a for a, _ in _priced(p, backend, model or machine_model()[0])]


def candidates(p: Problem, backend: str = "numpy") -> list[Algorithm]:
    """The algorithms whose declarations cover `p` on `backend`, in the order auto tries them
    (installed or not: `choose` passes over what cannot run here). The tuning table holds
    winners measured on numpy, so it speaks for numpy arrays only."""
    threads = _threads()
    order = ranked(p, backend, machine_model(threads)[0])
    tuned = set(_tuned(p, threads)) if backend == "numpy" else set()
    return [a for a in order if a.name in tuned] + [a for a in order if a.name not in tuned]


def explain(p: Problem, backend: str = "numpy", shown: int = 3) -> str:
    """One line on auto's choice: the tuned winner if any, the cheapest candidates with their
    modelled times, and which rates priced them."""
    threads = _threads()
    model, source = machine_model(threads)
    priced = [(a.name, cost_s) for a, cost_s in _priced(p, backend, model)
              if a.role == "candidate" and cost_s is not None and a.why_not(p, backend) is None]
    if not priced:
        return f"no candidate with a declared cost supports it on {backend}"
    tuned = _tuned(p, threads) if backend == "numpy" else []
    listed = ", ".join(f"{name} {cost_s * 1e3:.3g} ms" for name, cost_s in priced[:shown])
    first = f"tuned winner {tuned[0]}; untuned: " if tuned else ""
    return f"{first}{listed} (priced with {source})"


def choose(problem: Problem, backend: str = "numpy") -> Algorithm:
    """The first candidate that supports the problem on `backend`. Cached per problem, registry
    state and GEMM engine (its tuning table), so that timing "auto" times the chosen algorithm,
    not the choosing."""
    return _choose(problem, backend, generation(), gemm.generation())


@functools.lru_cache(maxsize=4096)
def _choose(problem: Problem, backend: str, registry_generation: int,
            engine_generation: int) -> Algorithm:
    for algorithm in candidates(problem, backend):
        if algorithm.why_not(problem, backend) is None:
            return algorithm
    raise Unsupported(f"no registered {problem.op} algorithm supports {problem} on {backend}")


def forget() -> None:
    """Drop cached choices and tuning tables (after `convbench tune` writes a new table, or the
    cost model's machine changes)."""
    _choose.cache_clear()
    _bound.cache_clear()
    tuned_winners.cache_clear()
    _calibrated_model.cache_clear()
    gemm.forget()  # the GEMM engine comes from the same calibration


def _nothing_supports(p: Problem) -> str | None:
    try:
        choose(p)
    except Unsupported as error:
        return str(error)
    return None


@register("conv2d", "auto", backends=BACKENDS, checks=(_nothing_supports,), resolve=choose,
          role="selector", ranks=RANKS, per_side=True, layouts=LAYOUTS,
          summary="picks per problem: tuned winner for this machine, else the cheapest "
          "candidate by its declared cost")
def conv2d_auto(p: Problem, *arrays: Any, **options: Any) -> Any:
    return _bound(p, backend_of(arrays[0]), generation(), gemm.generation())(p, *arrays,
                                                                             **options)


@functools.lru_cache(maxsize=4096)
def _bound(problem: Problem, backend: str, registry_generation: int,
           engine_generation: int) -> Any:
    """The chosen algorithm's function for `problem`, bridged (lowering): auto asks on every
    timed call, so the answer is kept."""
    return choose(problem, backend).bind(problem)
