"""A whole network's plan from one run: what each layer costs (time x how often it occurs), the
end-to-end time of every strategy, and the per-layer choice under a workspace budget, as
cuDNN's algorithm search picks the fastest algorithm whose workspace fits its limit.

A layer is a case of a network suite (its `count` says how often it occurs; 1 when the suite
says nothing). A layer's workspace is the larger of what was measured (tracemalloc's peak above
the call's inputs and output) and what the algorithm's model declares; where neither is known
(torch: its allocator is invisible to tracemalloc), the choice cannot be held to a budget and
is left out under one, with that reason. Strategies:

- the reference alone;
- each algorithm where it runs ok, the reference on the other layers (how many layers it
  covered is stated);
- `auto` as it ran;
- the per-layer best (the fastest ok algorithm of each layer, no budget);
- the plan (the per-layer best within the budget).

Pure: a DataFrame in, frames out; the command and the report print and write them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from convbench.units import format_bytes, format_time

LAYER_COLUMNS = ("layer", "count", "algo", "time_s", "total_s", "workspace_bytes",
                 "workspace_known", "note")
STRATEGY_COLUMNS = ("strategy", "total_s", "layers", "covered", "vs_reference")


@dataclass(frozen=True)
class Plan:
    """The plan of one suite on one backend."""

    suite: str
    backend: str
    reference: str
    budget_bytes: int | None
    layers: pd.DataFrame = field(repr=False)  # LAYER_COLUMNS, one row per layer, in order
    strategies: pd.DataFrame = field(repr=False)  # STRATEGY_COLUMNS
    by_layer: pd.DataFrame = field(repr=False)  # time x count per layer (rows) and strategy

    @property
    def total_s(self) -> float:
        return float(self.layers["total_s"].sum())

    @property
    def unplanned(self) -> list[str]:
        """Layers with no ok algorithm within the budget."""
        return list(self.layers.loc[self.layers["algo"].isna(), "layer"])


def workspace(rows: pd.DataFrame) -> pd.Series:
    """Per row: the larger of the measured and the modelled workspace, NaN when neither is
    known."""
    measured = pd.to_numeric(rows.get("peak_mem_bytes"), errors="coerce")
    modelled = pd.to_numeric(rows.get("workspace_model_bytes"), errors="coerce")
    return pd.concat([measured, modelled], axis=1).max(axis=1, skipna=True)


def _ok(frame: pd.DataFrame, backend: str) -> pd.DataFrame:
    rows = frame[(frame["status"] == "ok") & (frame["backend"] == backend)]
    return rows.assign(workspace_bytes=workspace(rows))


def selectors(rows: pd.DataFrame) -> set[str]:
    """Algorithms that ran another one (auto): a strategy, never a layer's choice."""
    if "ran_algo" not in rows:
        return set()
    ran = rows["ran_algo"].fillna(rows["algo"])
    return set(rows.loc[ran != rows["algo"], "algo"])


def _choice(rows: pd.DataFrame, budget: int | None) -> tuple[pd.Series | None, str]:
    """The fastest row of one layer within the budget, and what the choice passed over."""
    ranked = rows.sort_values("time_median_s", kind="stable")
    if budget is None:
        return (ranked.iloc[0] if len(ranked) else None), ""
    fits = ranked["workspace_bytes"] <= budget  # NaN (unknown) never fits
    passed = ranked[~fits.to_numpy()]
    chosen = ranked[fits.to_numpy()]
    note = "; ".join(
        f"{r.algo} {format_time(r.time_median_s)} passed over: "
        + (f"workspace {format_bytes(r.workspace_bytes)} over the budget"
           if not math.isnan(r.workspace_bytes) else "workspace unknown")
        for r in passed.itertuples()
        if not len(chosen) or r.time_median_s < chosen.iloc[0]["time_median_s"])
    if not len(chosen):
        return None, note or "no ok algorithm"
    return chosen.iloc[0], note


def _layers(ok: pd.DataFrame, order: list[str], counts: dict[str, int],
            budget: int | None) -> pd.DataFrame:
    out = []
    for layer in order:
        row, note = _choice(ok[ok["case"] == layer], budget)
        count = counts.get(layer, 1)
        if row is None:
            out.append((layer, count, None, np.nan, np.nan, np.nan, False, note))
            continue
        known = not math.isnan(row["workspace_bytes"])
        out.append((layer, count, row["algo"], row["time_median_s"],
                    row["time_median_s"] * count, row["workspace_bytes"], known, note))
    return pd.DataFrame(out, columns=list(LAYER_COLUMNS))


def _times(ok: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Median time per call, layers (rows) x algorithms (columns); NaN where not ok."""
    table = ok.pivot_table(index="case", columns="algo", values="time_median_s", aggfunc="first")
    return table.reindex(order)


def strategy_times(ok: pd.DataFrame, order: list[str], counts: dict[str, int], reference: str,
                   layers: pd.DataFrame, chosen_by: frozenset[str] | set[str] = frozenset(),
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(each strategy's total with its coverage, time x count by layer and strategy)."""
    times = _times(ok, order)
    weights = pd.Series([counts.get(layer, 1) for layer in order], index=order, dtype=float)
    ref = times[reference] if reference in times else pd.Series(np.nan, index=order)
    columns: dict[str, pd.Series] = {f"{reference} (reference)": ref}
    covered: dict[str, int] = {f"{reference} (reference)": int(ref.notna().sum())}
    for algo in times.columns:
        if algo == reference:
            continue
        selector = algo in chosen_by
        name = algo if selector else f"{algo}, {reference} elsewhere"
        columns[name] = times[algo] if selector else times[algo].fillna(ref)
        covered[name] = int(times[algo].notna().sum())
    best = times.drop(columns=[a for a in chosen_by if a in times]).min(axis=1, skipna=True)
    columns["per-layer best"] = best
    covered["per-layer best"] = int(best.notna().sum())
    planned = layers.set_index("layer")["time_s"].reindex(order)
    columns["plan"] = planned
    covered["plan"] = int(planned.notna().sum())
    by_layer = pd.DataFrame(columns).mul(weights, axis=0)
    ref_total = float(by_layer.iloc[:, 0].sum(min_count=len(order)))
    rows = [(name, float(by_layer[name].sum(min_count=len(order))), len(order), covered[name])
            for name in by_layer.columns]
    strategies = pd.DataFrame(rows, columns=["strategy", "total_s", "layers", "covered"])
    strategies["vs_reference"] = ref_total / strategies["total_s"]
    return strategies, by_layer


def make_plan(frame: pd.DataFrame, counts: dict[str, int], reference: str,
              budget_bytes: int | None = None, backend: str = "numpy") -> Plan:
    """The plan of the suite in `frame` (one run's rows) on `backend`. A strategy's total is
    NaN unless every layer has a time (a layer no algorithm of it ran leaves a hole)."""
    suites = frame["suite"].unique()
    if len(suites) != 1:
        raise ValueError(f"a plan is of one suite, got {', '.join(map(str, suites)) or 'none'}")
    if budget_bytes is not None and budget_bytes < 0:
        raise ValueError(f"budget_bytes must be >= 0, got {budget_bytes}")
    order = list(dict.fromkeys(frame["case"]))
    ok = _ok(frame, backend)
    choices = ok[~ok["algo"].isin(selectors(ok))]
    layers = _layers(choices, order, counts, budget_bytes)
    strategies, by_layer = strategy_times(ok, order, counts, reference, layers,
                                          selectors(ok))
    return Plan(str(suites[0]), backend, reference, budget_bytes, layers, strategies, by_layer)


def plan_record(plan: Plan) -> dict:
    """The plan as data, for a deployment script: per layer the algorithm to run."""
    def number(value: float) -> float | None:
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else value

    return {
        "suite": plan.suite, "backend": plan.backend, "reference": plan.reference,
        "workspace_budget_bytes": plan.budget_bytes, "total_s": number(plan.total_s),
        "layers": [{key: (number(v) if isinstance(v, float) else
                          (None if v is None or v is pd.NA else v))
                    for key, v in row.items()} for row in plan.layers.to_dict("records")],
        "strategies": [{k: number(v) if isinstance(v, float) else v for k, v in row.items()}
                       for row in plan.strategies.to_dict("records")],
    }
