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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

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
    ROW_KEY,
    SCHEMA_VERSION,
    metadata,
    now_iso,
    reading,
    rows,
    runs,
)
from convbench.measure.environment import machine_fingerprint
from convbench.run.rundir import (
    SAMPLES_KEY,
    Run,
    code_commit,
    read_meta,
    read_runs,
    row_machine_meta,
    sample_key,
)


def _run_record(run: Run) -> dict[str, Any]:
    return _meta_record(run.meta, run.suite, run.directory)


def _meta_record(meta: dict[str, Any], suite: str, directory: Path) -> dict[str, Any]:
    code = code_commit(meta)
    return {"suite": suite, "date": meta.get("date") or "", "commit": code["commit"],
            "dirty": code["dirty"], "machine": machine_fingerprint(meta),
            "host": meta.get("host") or "", "threads": meta.get("threads"),
            "source": str(directory), "meta": json.dumps(meta, default=str),
            "stored_at": now_iso()}


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _text(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def row_record(row: dict[str, Any], run_id: int, host: str, samples_s: Any = None
               ) -> dict[str, Any]:
    """The database row of one results row (a dict as the runner yields it, or as results.csv
    reads back), with its raw samples (seconds per call) where there are any. `host`: the run's,
    for a row that does not name its own (results written before rows did)."""
    key = sample_key(row)
    repeats = row.get("repeats")
    return {
        "run_id": run_id, "case": key[0], "algo": key[1], "backend": key[2],
        "direction": key[3], "host": _text(row.get("host")) or host,
        "descriptor": _text(row.get("descriptor")), "status": str(row["status"]),
        "reason": _text(row.get("reason")), "time_median_s": _number(row.get("time_median_s")),
        "time_iqr_s": _number(row.get("time_iqr_s")), "time_min_s": _number(row.get("time_min_s")),
        "repeats": None if repeats is None or pd.isna(repeats) else int(repeats),
        "samples_s": None if samples_s is None else json.dumps(
            [float(f"{t:.6g}") for t in samples_s]),
    }


def _row_records(run: Run, run_id: int) -> list[dict]:
    records, host = [], run.meta.get("host") or ""
    for _, row in run.frame.iterrows():
        values = row.to_dict()
        records.append(row_record(values, run_id, host, run.samples.get(sample_key(values))))
    return records


T = TypeVar("T")

# How often a store is tried again after another writer's insert broke a unique key.
COLLISIONS = 5


def _key(record: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(record[name] for name in ROW_KEY)


def _find(connection: Connection, record: dict[str, Any]) -> int | None:
    found = connection.execute(sa.select(runs.c.id).where(
        runs.c.suite == record["suite"], runs.c.date == record["date"],
        runs.c.host == record["host"])).scalar()
    return None if found is None else int(found)


def _found_or_inserted(connection: Connection, record: dict[str, Any]) -> tuple[int, bool]:
    """(id, newly inserted) of the run `record` names. Another writer inserting the same run
    between our look and our insert breaks the unique key: `_colliding` looks again."""
    existing = _find(connection, record)
    if existing is not None:
        return existing, False
    return int(connection.execute(runs.insert().values(**record)).inserted_primary_key[0]), True


def _run_id(engine: Engine, record: dict[str, Any]) -> int:
    """The id of the run `record` names, inserted if need be (its rows come one by one)."""
    def attempt() -> int:
        with engine.begin() as connection:
            return _found_or_inserted(connection, record)[0]

    return _colliding(attempt, f"run {record['source']}")


def _add_missing(connection: Connection, run_id: int, records: list[dict[str, Any]]) -> int:
    """Insert the records the run does not hold yet (by the row key); how many were added."""
    held = {tuple(r) for r in connection.execute(
        sa.select(*(rows.c[name] for name in ROW_KEY)).where(rows.c.run_id == run_id))}
    new = list({_key(r): r for r in records if _key(r) not in held}.values())  # each key once
    if new:
        connection.execute(rows.insert(), new)
    return len(new)


def _colliding(attempt: Callable[[], T], what: str) -> T:
    """`attempt` again when another writer's insert of the same run or rows broke the unique
    key between our look and our insert: the next look finds them."""
    for _ in range(COLLISIONS):
        try:
            return attempt()
        except sa.exc.IntegrityError:
            continue
    raise DatabaseBusy(f"{what} kept colliding with another writer's")


def _insert_row(engine: Engine, record: dict[str, Any]) -> int:
    """Add one row unless its key is stored already (1 or 0): the insert, and where the unique
    key refuses it, a look that finds the row there (anything else is a real error). Costs the
    same however many rows the run holds."""
    try:
        with engine.begin() as connection:
            connection.execute(rows.insert().values(**record))
        return 1
    except sa.exc.IntegrityError:
        key = [rows.c[name] == record[name] for name in ROW_KEY]
        with reading(engine) as connection:
            if connection.execute(sa.select(rows.c.id).where(*key)).first() is None:
                raise
        return 0


def _store(engine: Engine, run: Run) -> tuple[int, bool]:
    """(run id, whether anything was added): the run's record and rows in one transaction when
    the run is new (so that a concurrent writer finds it whole or not at all); else the rows the
    database does not hold yet (rows streamed while the run went on are there already) and the
    meta as the run ended (noise, resumes)."""
    record = _run_record(run)

    def attempt() -> tuple[int, bool]:
        with engine.begin() as connection:
            run_id, created = _found_or_inserted(connection, record)
            added = _add_missing(connection, run_id, _row_records(run, run_id))
            if not created:
                stored_meta = connection.execute(sa.select(runs.c.meta).where(
                    runs.c.id == run_id)).scalar()
                if stored_meta != record["meta"]:  # streamed, its meta.json updated since
                    connection.execute(runs.update().where(runs.c.id == run_id).values(
                        meta=record["meta"]))
            return run_id, created or added > 0

    return _colliding(attempt, f"run {run.directory}")


def add_run(db: str | Engine | None, directory: Path | str) -> list[tuple[int, bool]]:
    """Store the run(s) in `directory`; (run id, whether anything was new) for each suite. Rows
    already stored (same suite, date and host; same case, algorithm, backend, direction and
    row host) are left as they are, also when another process stores them at the same moment;
    a locked database is waited for and retried (convbench.analysis.database)."""
    found = read_runs(directory)
    with connected(db) as engine:
        return [retrying(lambda run=run: _store(engine, run), f"store {run.directory}")
                for run in found]


class RowStream:
    """A run's rows into the database the moment each is produced (`convbench run --store`),
    so that a run killed halfway leaves what it measured in the history too. The run's record
    is made at the first row, from the meta.json the run wrote before it; `add_run` at the end
    adds whatever did not arrive (and the final meta), so that nothing is stored twice.

    The database failing mid-run never stops the run: the first failure is kept in `error`,
    later rows are not sent, and the end's `add_run` tries again."""

    def __init__(self, db: str, directory: Path, suite: str,
                 directory_of: Callable[[dict[str, Any]], Path] | None = None) -> None:
        self.db, self.directory, self.suite = db, Path(directory), suite
        self.directory_of = directory_of  # a row's run directory, where runs have several
        self.engine: Engine | None = None
        self.run_ids: dict[tuple[str, str], int] = {}  # by machine (host, fingerprint)
        self.hosts: dict[tuple[str, str], str] = {}  # the host of each machine's run
        self.stored = 0
        self.error: str | None = None

    def add(self, row: dict[str, Any]) -> None:
        if self.error is not None:
            return
        try:
            if self.engine is None:
                self.engine = engine_for(self.db)
            engine = self.engine
            machine = (str(row.get("host") or ""), str(row.get("fingerprint") or ""))
            if machine not in self.run_ids:
                directory = self.directory_of(row) if self.directory_of else self.directory
                meta = row_machine_meta(read_meta(directory), row)
                run = _meta_record(meta, self.suite, directory)
                self.hosts[machine] = run["host"]
                self.run_ids[machine] = retrying(lambda: _run_id(engine, run),
                                                 f"store the run {directory}")
            run_id = self.run_ids[machine]
            record = row_record(row, run_id, self.hosts[machine], row.get(SAMPLES_KEY))
            self.stored += retrying(lambda: _insert_row(engine, record),
                                    f"store a row of {self.directory}")
        except (sa.exc.SQLAlchemyError, DatabaseBusy, OSError, ValueError) as error:
            self.error = f"{type(error).__name__}: {str(error).splitlines()[0]}"

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None


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
