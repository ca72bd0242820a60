"""The results database: runs and their rows over time, in SQLite by default or any SQLAlchemy
URL (PostgreSQL for a team's shared server).

A run is keyed by commit, machine fingerprint and date (plus suite and host, so that storing the
same directory twice is a no-op). Its rows keep the statistics and the raw samples. The tables
and their version are convbench.analysis.schema's; the URL, the engines and the retries under
concurrent writers convbench.analysis.database's.

    add_run("sqlite:///reports/history.db", "reports/quick")
    case_history(db, "rn50_layer1_3x3")          # a DataFrame, one row per run x algorithm
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from convbench.analysis.database import (  # noqa: F401  (the module's API since before)
    DB_VARIABLE,
    DEFAULT_DB,
    DatabaseBusy,
    connected,
    default_url,
    engine_for,
    engine_url,
    retrying,
)
from convbench.analysis.schema import (  # noqa: F401
    SCHEMA_VERSION,
    metadata,
    now_iso,
    reading,
    rows,
    runs,
)
from convbench.measure.environment import machine_fingerprint
from convbench.run.rundir import Run, code_commit, read_runs, sample_key


def _run_record(run: Run) -> dict[str, Any]:
    meta = run.meta
    code = code_commit(meta)
    return {"suite": run.suite, "date": meta.get("date") or "", "commit": code["commit"],
            "dirty": code["dirty"], "machine": machine_fingerprint(meta),
            "host": meta.get("host") or "", "threads": meta.get("threads"),
            "source": str(run.directory), "meta": json.dumps(meta, default=str),
            "stored_at": now_iso()}


def _number(value: Any) -> float | None:
    return None if pd.isna(value) else float(value)


def _row_records(run: Run, run_id: int) -> list[dict]:
    records = []
    for _, row in run.frame.iterrows():
        key = sample_key(row.to_dict())
        found = run.samples.get(key)
        records.append({
            "run_id": run_id, "case": key[0], "algo": key[1], "backend": key[2],
            "direction": key[3], "descriptor": row["descriptor"], "status": row["status"],
            "reason": row["reason"], "time_median_s": _number(row["time_median_s"]),
            "time_iqr_s": _number(row["time_iqr_s"]), "time_min_s": _number(row["time_min_s"]),
            "repeats": None if pd.isna(row["repeats"]) else int(row["repeats"]),
            "samples_s": None if found is None else json.dumps(found.tolist()),
        })
    return records


def _find(connection: Connection, record: dict[str, Any]) -> int | None:
    found = connection.execute(sa.select(runs.c.id).where(
        runs.c.suite == record["suite"], runs.c.date == record["date"],
        runs.c.host == record["host"])).scalar()
    return None if found is None else int(found)


def _insert(connection: Connection, run: Run, record: dict[str, Any]) -> int:
    run_id = connection.execute(runs.insert().values(**record)).inserted_primary_key[0]
    connection.execute(rows.insert(), _row_records(run, run_id))
    return int(run_id)


def _store(engine: Engine, run: Run) -> tuple[int, bool]:
    """(run id, newly added). A writer that stored the same run between our look and our insert
    makes the insert break the unique key: then the run is found, already stored."""
    record = _run_record(run)
    try:
        with engine.begin() as connection:
            existing = _find(connection, record)
            if existing is not None:
                return existing, False
            return _insert(connection, run, record), True
    except sa.exc.IntegrityError:
        with reading(engine) as connection:
            existing = _find(connection, record)
        if existing is None:  # not a concurrent writer: a real error
            raise
        return existing, False


def add_run(db: str | Engine | None, directory: Path | str) -> list[tuple[int, bool]]:
    """Store the run(s) in `directory`; (run id, newly added) for each suite. A run already
    stored (same suite, date and host) is left as it is, also when another process stores it at
    the same moment; a locked database is waited for and retried (convbench.analysis.database)."""
    found = read_runs(directory)
    with connected(db) as engine:
        return [retrying(lambda run=run: _store(engine, run), f"store {run.directory}")
                for run in found]


def list_runs(db: str | Engine | None = None, suite: str | None = None) -> pd.DataFrame:
    """Every stored run, oldest first, with its count of rows and of ok rows."""
    ok = sa.func.sum(sa.case((rows.c.status == "ok", 1), else_=0))
    query = (sa.select(runs.c.id, runs.c.suite, runs.c.date, runs.c.commit, runs.c.dirty,
                       runs.c.machine, runs.c.host, runs.c.threads,
                       sa.func.count(rows.c.id).label("rows"), ok.label("ok"))
             .select_from(runs.outerjoin(rows)).group_by(runs.c.id)
             .order_by(runs.c.date, runs.c.id))
    if suite:
        query = query.where(runs.c.suite == suite)
    columns = ["id", "suite", "date", "commit", "dirty", "machine", "host", "threads", "rows",
               "ok"]
    return pd.DataFrame(_read(db, query, "list the runs"), columns=columns)


HISTORY_COLUMNS = ["run_id", "suite", "date", "commit", "dirty", "machine", "host", "algo",
                   "backend", "direction", "status", "time_median_s", "time_iqr_s",
                   "time_min_s", "repeats"]


def case_history(db: str | Engine | None, case: str, suite: str | None = None,
                 algorithms: Sequence[str] | None = None, backend: str | None = None,
                 direction: str | None = None) -> pd.DataFrame:
    """One row per stored run x algorithm of `case`, oldest run first (HISTORY_COLUMNS)."""
    query = (sa.select(runs.c.id.label("run_id"), runs.c.suite, runs.c.date, runs.c.commit,
                       runs.c.dirty, runs.c.machine, runs.c.host, rows.c.algo, rows.c.backend,
                       rows.c.direction, rows.c.status, rows.c.time_median_s,
                       rows.c.time_iqr_s, rows.c.time_min_s, rows.c.repeats)
             .select_from(rows.join(runs)).where(rows.c.case == case)
             .order_by(runs.c.date, runs.c.id, rows.c.id))
    for column, value in ((runs.c.suite, suite), (rows.c.backend, backend),
                          (rows.c.direction, direction)):
        if value:
            query = query.where(column == value)
    if algorithms:
        query = query.where(rows.c.algo.in_(algorithms))
    return pd.DataFrame(_read(db, query, f"read the history of {case}"), columns=HISTORY_COLUMNS)


def _read(db: str | Engine | None, query: sa.Select, what: str) -> list[sa.RowMapping]:
    """The query's rows, retried while the database is locked."""
    def read(engine: Engine) -> list[sa.RowMapping]:
        with reading(engine) as connection:
            return list(connection.execute(query).mappings().all())

    with connected(db) as engine:
        return retrying(lambda: read(engine), what)
