"""The results database: runs and their rows over time, in SQLite by default or any SQLAlchemy
URL (PostgreSQL for a team's shared server).

A run is keyed by commit, machine fingerprint and date (plus suite and host, so that storing the
same directory twice is a no-op). Its rows keep the statistics and the raw samples.

    add_run("sqlite:///reports/history.db", "reports/quick")
    case_history(db, "rn50_layer1_3x3")          # a DataFrame, one row per run x algorithm
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from convbench.measure.environment import machine_fingerprint
from convbench.run.rundir import Run, code_commit, read_runs, sample_key

DEFAULT_DB = "sqlite:///reports/history.db"
DB_VARIABLE = "CONVBENCH_DB"

metadata = sa.MetaData()
runs = sa.Table(
    "convbench_runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("suite", sa.String(200), nullable=False),
    sa.Column("date", sa.String(40), nullable=False),  # ISO 8601, UTC: sorts as text
    sa.Column("commit", sa.String(64)),
    sa.Column("dirty", sa.Boolean),
    sa.Column("machine", sa.String(40), nullable=False),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("threads", sa.Integer),
    sa.Column("source", sa.Text),
    sa.Column("meta", sa.Text),
    sa.UniqueConstraint("suite", "date", "host", name="uq_convbench_run"),
)
rows = sa.Table(
    "convbench_rows", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("convbench_runs.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("case", sa.String(200), nullable=False, index=True),
    sa.Column("algo", sa.String(200), nullable=False),
    sa.Column("backend", sa.String(50), nullable=False),
    sa.Column("direction", sa.String(50), nullable=False),
    sa.Column("descriptor", sa.String(200)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("time_median_s", sa.Float),
    sa.Column("time_iqr_s", sa.Float),
    sa.Column("time_min_s", sa.Float),
    sa.Column("repeats", sa.Integer),
    sa.Column("samples_s", sa.Text),  # JSON list, seconds per call
)


def default_url() -> str:
    return os.environ.get(DB_VARIABLE) or DEFAULT_DB


def _url(db: str | None) -> str:
    url = db or default_url()
    return url if "://" in url else f"sqlite:///{Path(url)}"


def engine_url(db: str | Engine | None) -> str:
    """The database's URL as it may be printed: the password hidden."""
    if isinstance(db, Engine):
        return db.url.render_as_string(hide_password=True)
    try:
        return sa.engine.make_url(_url(db)).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return _url(db)


def engine_for(db: str | Engine | None = None) -> Engine:
    """An engine with the tables created; a plain path means an SQLite file."""
    if isinstance(db, Engine):
        metadata.create_all(db)
        return db
    url = _url(db)
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as error:
        raise ValueError(f"not a database URL: {url!r} ({error})") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = sa.create_engine(parsed)
    except (ImportError, sa.exc.ArgumentError) as error:  # the driver: psycopg for PostgreSQL
        raise ValueError(f"no driver for {parsed.drivername} ({error}); for PostgreSQL: "
                         "pip install 'convbench[postgresql]'") from None
    try:
        metadata.create_all(engine)
    except sa.exc.SQLAlchemyError as error:
        raise ValueError(f"cannot use the database {parsed!r}: {error}") from None
    return engine


@contextlib.contextmanager
def connected(db: str | Engine | None) -> Iterator[Engine]:
    """`engine_for(db)`, disposed of afterwards unless the caller passed an Engine."""
    engine = engine_for(db)
    try:
        yield engine
    finally:
        if engine is not db:
            engine.dispose()


def _run_record(run: Run) -> dict[str, Any]:
    meta = run.meta
    code = code_commit(meta)
    return {"suite": run.suite, "date": meta.get("date") or "", "commit": code["commit"],
            "dirty": code["dirty"], "machine": machine_fingerprint(meta),
            "host": meta.get("host") or "", "threads": meta.get("threads"),
            "source": str(run.directory), "meta": json.dumps(meta, default=str)}


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


def add_run(db: str | Engine | None, directory: Path | str) -> list[tuple[int, bool]]:
    """Store the run(s) in `directory`; (run id, newly added) for each suite. A run already
    stored (same suite, date and host) is left as it is."""
    stored = []
    for run in read_runs(directory):
        record = _run_record(run)
        with connected(db) as engine, engine.begin() as connection:
            existing = connection.execute(sa.select(runs.c.id).where(
                runs.c.suite == record["suite"], runs.c.date == record["date"],
                runs.c.host == record["host"])).scalar()
            if existing is not None:
                stored.append((int(existing), False))
                continue
            run_id = connection.execute(runs.insert().values(**record)).inserted_primary_key[0]
            connection.execute(rows.insert(), _row_records(run, run_id))
            stored.append((int(run_id), True))
    return stored


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
    with connected(db) as engine, engine.connect() as connection:
        return pd.DataFrame(connection.execute(query).mappings().all(),
                            columns=["id", "suite", "date", "commit", "dirty", "machine", "host",
                                     "threads", "rows", "ok"])


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
    with connected(db) as engine, engine.connect() as connection:
        return pd.DataFrame(connection.execute(query).mappings().all(), columns=HISTORY_COLUMNS)
