"""Comparisons over a results DataFrame that every view shares (the terminal table, the report,
compare): speedups against the reference algorithm, their geometric means, time formatting."""

from __future__ import annotations

import math

import pandas as pd

from convbench.units import format_time  # noqa: F401  (its callers' old import path)

from convbench.backends import reference_stand_in


def speedups(frame: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Per ok row: reference median / this median, for cases where the reference is ok. The
    reference runs on the row's backend; on a backend where it cannot (torch on cupy), the
    backend's declared stand-in (torch-cuda: cuDNN) does."""
    ok = frame[frame["status"] == "ok"]
    ref = ok[ok["algo"] == reference].set_index(["case", "backend"])["time_median_s"]
    keyed = ok.set_index(["case", "backend"])
    ratio = ref.reindex(keyed.index)
    on_device = [(case, reference_stand_in(backend) or backend) for case, backend in keyed.index]
    ratio = ratio.fillna(pd.Series(ref.reindex(on_device).to_numpy(), index=keyed.index))
    return ok.assign(speedup=ratio.to_numpy() / keyed["time_median_s"].to_numpy())


def geomean_speedups(frame: pd.DataFrame, reference: str) -> dict[str, float]:
    """Geometric mean of the speedup per algorithm over the cases it shares with the reference."""
    table = speedups(frame, reference).dropna(subset=["speedup"])
    return {algo: math.exp(group["speedup"].map(math.log).mean())
            for algo, group in table.groupby("algo", sort=False)}
