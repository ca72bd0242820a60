"""The report's DataFrame as files: CSV (any tool) and, where pyarrow is installed
(convbench[parquet]), Parquet (typed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

from convbench.report.frame import DERIVED
from convbench.run.rundir import BOOL_COLUMNS, COLUMNS, TEXT_COLUMNS

CSV_FILE = "report.csv"
PARQUET_FILE = "report.parquet"
DERIVED_TEXT = ("run", "case_label", "algo_label", "series", "direction")


def export_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """results.csv's columns, any others the results carry, then the derived ones; nullable
    booleans, so that a row without timing keeps an empty `noisy`."""
    known = [c for c in COLUMNS if c in frame.columns]
    extra = [c for c in frame.columns if c not in COLUMNS and c not in DERIVED]
    derived = [c for c in DERIVED if c in frame.columns]
    out = frame[known + extra + derived].reset_index(drop=True)
    return out.astype({c: "boolean" for c in BOOL_COLUMNS if c in out.columns})


def parquet_available() -> bool:
    """Whether pandas can write Parquet here (pyarrow, the `parquet` extra)."""
    return importlib.util.find_spec("pyarrow") is not None


def write_exports(frame: pd.DataFrame, out_dir: Path) -> list[Path]:
    """report.csv, and report.parquet where pyarrow is installed."""
    table = export_frame(frame)
    csv_path, parquet_path = out_dir / CSV_FILE, out_dir / PARQUET_FILE
    table.to_csv(csv_path, index=False)
    if not parquet_available():
        return [csv_path]
    table.to_parquet(parquet_path, index=False)
    return [csv_path, parquet_path]


def read_export(path: Path | str) -> pd.DataFrame:
    """A report.csv or report.parquet back as the DataFrame it was written from."""
    path = Path(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    text = {c: str for c in (*TEXT_COLUMNS, *DERIVED_TEXT)}
    table = pd.read_csv(path, dtype=text, keep_default_na=False, na_values=[""])
    for column in text:
        if column in table.columns:
            table[column] = table[column].fillna("")
    return table.astype({c: "boolean" for c in BOOL_COLUMNS if c in table.columns})
