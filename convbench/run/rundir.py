"""The run directory: what one run of one suite leaves behind, written and read here only.

    results.csv    one row per (case, algorithm, backend), appended as it is produced, so that an
                   interrupted run loses nothing and can be resumed (COLUMNS)
    samples.jsonl  the raw timing samples of each timed row, one JSON line per row
    meta.json      the machine, environment and suite the run measured with, and its noise

Writers: `ResultsFile` (rows and their samples), `write_meta`, `update_meta`. Readers:
`read_results` (one results.csv as a DataFrame, documented for users), `read_samples`,
`read_meta`, and `read_run` / `read_runs` / `load_runs`, which give a `Run`: everything a
directory holds, as compare, history and the report use it.

samples.jsonl is written (flushed and synced) just before its row of results.csv. A run killed
between the two leaves a line without a row; the resumed run times that row again and appends a
newer line, and the newest line for a key wins when reading:

    {"case": "tiny_3x3", "algo": "im2col", "backend": "numpy", "number": 11,
     "samples_s": [4.02e-05, 3.98e-05, ...], "process": [0, 0, ..., 1, 1, ...]}

`process` (when more than one process timed the row) names the process each sample came from,
0 being the run's own (convbench.run.processes).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from convbench.algorithms.registry import DEFAULT_REFERENCE

COLUMNS: tuple[str, ...] = (
    "suite", "case", "descriptor", "op", "direction", "algo", "backend", "dtype", "status",
    "reason", "time_median_s", "time_iqr_s", "time_min_s", "repeats", "calls_per_sample", "noisy",
    "flops", "gflops", "max_abs_err", "rel_l2_err", "norm_err", "tolerance", "exact",
    "weights_prepared", "ran_algo", "kernels",
    "peak_mem_bytes", "workspace_model_bytes", "mem_note", "threads", "seed", "timestamp",
    "processes", "host", "fingerprint", "shared_machine",
)
KEY: tuple[str, ...] = ("case", "algo", "backend")
STATUSES: tuple[str, ...] = ("ok", "wrong", "unsupported", "error", "oom", "skipped")
TEXT_COLUMNS = ("suite", "case", "descriptor", "op", "direction", "algo", "backend", "dtype",
                "status", "reason", "mem_note", "timestamp", "ran_algo", "kernels", "host",
                "fingerprint")
BOOL_COLUMNS = ("noisy", "exact", "weights_prepared", "shared_machine")
NUMBER_COLUMNS = tuple(c for c in COLUMNS if c not in TEXT_COLUMNS + BOOL_COLUMNS)
REQUIRED_COLUMNS = ("suite", "case", "algo", "backend", "status")  # in every convbench's CSV

RESULTS_FILE = "results.csv"
SAMPLES_FILE = "samples.jsonl"
META_FILE = "meta.json"
SAMPLES_KEY = "samples_s"  # a row's raw samples: written to samples.jsonl, not to the CSV
PROCESSES_KEY = "process_of"  # the process of each sample: samples.jsonl's "process"

# What identifies a row's samples; "direction" only where the results have that column.
SAMPLE_KEY_FIELDS: tuple[str, ...] = ("case", "algo", "backend", "direction")
DEFAULT_DIRECTION = "fwd"  # convbench.problems: fwd, bwd_data, bwd_weight

SampleKey = tuple[str, str, str, str]


# --- writing ----------------------------------------------------------------------------------

def _repair(path: Path) -> None:
    """Drop a last line cut short by a kill in the middle of a write."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def _check_header(path: Path) -> None:
    """Rows are appended in COLUMNS order: a file written with other columns cannot be resumed."""
    with path.open(newline="") as handle:
        header = next(csv.reader(handle), None)
    if header is not None and tuple(header) != COLUMNS:
        raise ValueError(f"--resume: {path} was written with other columns (an older convbench?); "
                         "run without --resume, or into another --out")


def _append_synced(path: Path, write: Callable[[TextIO], object]) -> None:
    """Open `path` for appending, let `write(handle)` write, then flush and sync to disk."""
    with path.open("a", newline="") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())


class ResultsFile:
    """Appends rows to <dir>/results.csv and their samples to <dir>/samples.jsonl, each flushed
    and synced one row at a time. Without `resume` both files start afresh."""

    def __init__(self, directory: Path, resume: bool) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / RESULTS_FILE
        self.samples_path = directory / SAMPLES_FILE
        for path in (self.path, self.samples_path):
            if path.exists() and resume:
                _repair(path)
            elif path.exists():
                path.unlink()
        if resume and self.path.exists():
            _check_header(self.path)

    def _written(self) -> pd.DataFrame | None:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return None
        return read_results(self.path)

    def done(self) -> set[tuple[str, ...]]:
        """Keys of the rows already written (for --resume)."""
        frame = self._written()
        if frame is None:
            return set()
        return {tuple(str(v) for v in key) for key in frame[list(KEY)].itertuples(index=False)}

    def done_descriptors(self) -> dict[tuple[str, ...], str]:
        """The descriptor each written row was measured on, by key."""
        frame = self._written()
        if frame is None:
            return {}
        keys = frame[list(KEY)].itertuples(index=False)
        return {tuple(str(v) for v in k): d for k, d in zip(keys, frame["descriptor"])}

    def append(self, row: dict[str, Any]) -> None:
        """Write one row; its raw samples (key `samples_s`, if any) go to samples.jsonl first."""
        row = dict(row)
        samples_s = row.pop(SAMPLES_KEY, None)
        process_of = row.pop(PROCESSES_KEY, None)
        if samples_s is not None:
            line = json.dumps(_samples_record(row, samples_s, process_of)) + "\n"
            _append_synced(self.samples_path, lambda handle: handle.write(line))
        unknown = set(row) - set(COLUMNS)
        if unknown:
            raise ValueError(f"row has columns the results table does not know: {sorted(unknown)}")
        new = not self.path.exists() or self.path.stat().st_size == 0
        _append_synced(self.path, lambda handle: _write_row(handle, row, new))


def _write_row(handle: TextIO, row: dict[str, Any], header: bool) -> None:
    writer = csv.DictWriter(handle, fieldnames=COLUMNS)
    if header:
        writer.writeheader()
    writer.writerow(row)


def _samples_record(row: dict[str, Any], samples_s: Sequence[float],
                    process_of: Sequence[int] | None = None) -> dict[str, Any]:
    """samples.jsonl's line for a row: its key, calls per sample, the samples rounded to six
    significant digits (far below any timing noise, and a third of the file), and the process
    of each sample when more than one process took them."""
    record = {k: row[k] for k in SAMPLE_KEY_FIELDS if k in row}
    record |= {"number": row.get("calls_per_sample"),
               "samples_s": [float(f"{t:.6g}") for t in samples_s]}
    if process_of and len(set(process_of)) > 1:
        record["process"] = [int(i) for i in process_of]
    return record


def write_meta(directory: Path, meta: dict[str, Any], resume: bool) -> None:
    """meta.json beside the results; a resumed run keeps the first meta and notes the resume."""
    path = directory / META_FILE
    if resume and path.exists():
        previous = json.loads(path.read_text())
        previous.setdefault("resumed", []).append(meta)
        meta = previous
    path.write_text(json.dumps(meta, indent=2, default=str) + "\n")


def update_meta(directory: Path, fields: dict[str, Any]) -> None:
    """Merge `fields` into meta.json at the top level (what is only known once a run ends)."""
    path = directory / META_FILE
    meta = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps(meta | fields, indent=2, default=str) + "\n")


# --- reading the files ------------------------------------------------------------------------

def read_results(path: Path | str) -> pd.DataFrame:
    """A results.csv (or a directory holding one) as a DataFrame with the expected columns.
    ValueError naming the file when it is no results table: not text, not CSV, without
    convbench's columns, a row cut short, a status or number that is not one."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    try:
        _check_rows(path)
        frame = pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS}, keep_default_na=False,
                            na_values=[""])
        return _checked(_completed(frame))
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not text: byte {error.start} is not UTF-8 ({error.reason})") \
            from None
    except (OSError, ValueError, csv.Error) as error:  # pandas' parse errors are ValueErrors
        why = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise ValueError(f"{path}: {why}") from None


def _check_rows(path: Path) -> None:
    """A header with convbench's key columns, every row as many fields as the header, and a
    last line that ends (a run killed mid-write leaves one cut short; --resume repairs it)."""
    with path.open(newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle)) or [[]]
    if not header:
        raise ValueError("empty file: no header, no results")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        shown = ", ".join(header[:6]) + (", ..." if len(header) > 6 else "")
        raise ValueError(f"not a convbench results table: no {missing[0]!r} column "
                         f"(header: {shown})")
    if not path.read_bytes().endswith(b"\n"):
        raise ValueError(f"its last row is cut short{_last_row_fields(rows, header)} (a run "
                         "killed while writing it?); `convbench run --resume` repairs it")
    for number, fields in enumerate(rows, start=1):
        if len(fields) != len(header):
            raise ValueError(f"row {number} has {len(fields)} fields, the header "
                             f"{len(header)}: cut short or not written by convbench")


def _last_row_fields(rows: list[list[str]], header: list[str]) -> str:
    """': row 3 has 3 fields, the header 32' when the last row has too few; else ''."""
    if rows and len(rows[-1]) != len(header):
        return f": row {len(rows)} has {len(rows[-1])} fields, the header {len(header)}"
    return ""


def _completed(frame: pd.DataFrame) -> pd.DataFrame:
    """Every column of COLUMNS, text as text and flags as booleans."""
    for column in COLUMNS:  # a results.csv written before a column existed (e.g. a baseline)
        if column not in frame.columns:
            frame[column] = None
    for column in TEXT_COLUMNS:
        frame[column] = frame[column].fillna("")
    for column in BOOL_COLUMNS:
        frame[column] = frame[column].map({"True": True, "False": False, True: True,
                                           False: False})
    return frame


def _checked(frame: pd.DataFrame) -> pd.DataFrame:
    """ValueError naming the first row whose status is not a status, or whose number is not a
    number."""
    unknown = ~frame["status"].isin(STATUSES)
    if unknown.any():
        row = int(unknown.to_numpy().argmax())
        raise ValueError(f"row {row + 1}: status {frame['status'].iloc[row]!r} is not one of "
                         f"{', '.join(STATUSES)}")
    for column in NUMBER_COLUMNS:
        given = frame[column]
        bad = given.notna() & pd.to_numeric(given, errors="coerce").isna()
        if bad.any():
            row = int(bad.to_numpy().argmax())
            raise ValueError(f"row {row + 1}: {column} {given.iloc[row]!r} is not a number")
    return frame


def rows_written(directory: Path) -> int:
    """How many whole rows results.csv holds (0 without one): what an interrupted run kept. A
    row cut short by the interruption is not counted; --resume drops it."""
    path = directory / RESULTS_FILE
    if not path.is_file():
        return 0
    text = path.read_text(encoding="utf-8", errors="replace")
    whole = text[: text.rfind("\n") + 1]
    return max(0, sum(1 for _ in csv.reader(io.StringIO(whole, newline=""))) - 1)


def sample_key(record: dict[str, Any]) -> SampleKey:
    """(case, algo, backend, direction) of a row or a samples line; no direction -> fwd."""
    direction = record.get("direction")
    if not isinstance(direction, str) or not direction:  # missing, empty, or NaN from pandas
        direction = DEFAULT_DIRECTION
    return (str(record["case"]), str(record["algo"]), str(record["backend"]), str(direction))


def read_samples(directory: Path | str) -> dict[SampleKey, np.ndarray]:
    """The raw samples (seconds per call) of every timed row, by key; {} if none were kept.
    A line cut short by a kill is skipped."""
    return read_sample_records(directory)[0]


def read_sample_records(directory: Path | str
                        ) -> tuple[dict[SampleKey, np.ndarray], dict[SampleKey, np.ndarray]]:
    """(samples, process of each sample) by key. A row timed by one process (or written before
    processes were recorded) has no entry in the second."""
    path = Path(directory) / SAMPLES_FILE
    found: dict[SampleKey, np.ndarray] = {}
    processes: dict[SampleKey, np.ndarray] = {}
    if not path.is_file():
        return found, processes
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
            key, samples = sample_key(record), np.asarray(record["samples_s"], dtype=float)
            process = np.asarray(record.get("process") or [], dtype=int)
        except (ValueError, KeyError, TypeError):
            continue
        found[key] = samples
        processes.pop(key, None)  # the newest line for a key wins, whole
        if len(process) == len(samples) and len(process):
            processes[key] = process
    return found, processes


def read_meta(directory: Path) -> dict[str, Any]:
    """meta.json, or {} when the run wrote none; ValueError when it cannot be read."""
    path = directory / META_FILE
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: cannot read it: {error}") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: expected a JSON object")  # bad input, like a bad CSV
    _check_meta_shape(path, meta)
    return meta


# The entries of meta.json that readers look inside, and what each must be when present.
META_SHAPES: dict[str, type] = {
    "suite": dict, "cpu": dict, "noise": dict, "machine": dict, "versions": dict, "env": dict,
    "convbench": dict, "git": dict, "torch_cuda": dict, "blas": list, "resumed": list,
}


def _check_meta_shape(path: Path, meta: dict[str, Any]) -> None:
    """ValueError naming the first entry of META_SHAPES that has another JSON type."""
    for key, kind in META_SHAPES.items():
        value = meta.get(key)
        if value is not None and not isinstance(value, kind):
            expected = "an object" if kind is dict else "an array"
            raise ValueError(f"{path}: {key!r} should be {expected}, got {value!r:.40}")
    if not all(isinstance(lib, dict) for lib in meta.get("blas") or []):
        raise ValueError(f"{path}: 'blas' should be an array of objects")


def code_commit(meta: dict[str, Any]) -> dict[str, Any]:
    """The commit a run measured: the user's project commit when the run was given one (`git`),
    else convbench's own (`convbench`; `git` was the current directory's HEAD before 0.1.1)."""
    project, own = meta.get("git") or {}, meta.get("convbench") or {}
    chosen = project if project.get("commit") else own
    return {"commit": chosen.get("commit"), "dirty": chosen.get("dirty"),
            "source": "project" if chosen is project else "convbench"}


def _noise_warning(meta: dict[str, Any]) -> str | None:
    return (meta.get("noise") or {}).get("warning")


def noise_warning(directory: Path) -> str | None:
    """The noise warning the runner recorded in meta.json, if any."""
    return _noise_warning(read_meta(directory))


# --- runs ---------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Run:
    """One run directory: one suite, run once on one machine."""

    directory: Path
    label: str  # the name a report gives it beside other runs
    meta: dict[str, Any] = field(repr=False)  # meta.json; {} when the run wrote none
    frame: pd.DataFrame = field(repr=False)  # results.csv's rows, every direction filled in
    samples: dict[SampleKey, np.ndarray] = field(repr=False)  # raw seconds per call
    # the process of each sample, for rows that several processes timed (samples.jsonl)
    processes: dict[SampleKey, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def suite(self) -> str:
        names = self.frame["suite"].unique()
        if len(names):
            return str(names[0])
        return str((self.meta.get("suite") or {}).get("name") or self.directory.name)

    @property
    def reference(self) -> str:
        """The suite's reference algorithm, which speedups are taken against."""
        return str((self.meta.get("suite") or {}).get("reference") or DEFAULT_REFERENCE)

    @property
    def counts(self) -> dict[str, int]:
        """How often each case's layer occurs in its network (1 unless the suite said)."""
        counts = (self.meta.get("suite") or {}).get("counts") or {}
        return {str(k): int(v) for k, v in counts.items()}

    @property
    def network(self) -> bool:
        """Whether the cases are one network's layers (a plan applies)."""
        suite = self.meta.get("suite") or {}
        return bool(suite.get("network") or suite.get("counts"))

    @property
    def noise_warning(self) -> str | None:
        """Why the machine was noisy during the run, as the runner recorded it; None if quiet."""
        return _noise_warning(self.meta)


def run_directories(path: Path) -> list[Path]:
    """`path` itself when it holds results.csv, else its subdirectories that do."""
    if not path.is_dir():
        raise ValueError(f"{path}: not a directory")
    if (path / RESULTS_FILE).is_file():
        return [path]
    found = sorted(p for p in path.iterdir() if (p / RESULTS_FILE).is_file())
    if not found:
        raise ValueError(f"{path}: no {RESULTS_FILE} in it or in its subdirectories")
    return found


def _read_frame(directory: Path) -> pd.DataFrame:
    """read_results; a table with no rows is an error here (nothing to compare, report or
    store). Rows written before directions were recorded read as forward passes."""
    path = directory / RESULTS_FILE
    frame = read_results(path)
    if frame.empty:
        raise ValueError(f"{path}: no results in it (a header and no rows)")
    frame["direction"] = frame["direction"].replace("", DEFAULT_DIRECTION)
    return frame


def read_run(directory: Path, label: str | None = None) -> Run:
    """The run in `directory`; ValueError when its results or meta.json cannot be read."""
    samples, processes = read_sample_records(directory)
    return Run(directory, label or directory.name, read_meta(directory), _read_frame(directory),
               samples, processes)


def read_runs(path: Path | str) -> list[Run]:
    """Every run under `path`: itself, or its subdirectories that hold results.csv (the OUT of
    `convbench run`); a directory that several machines filled (--cluster), one run each."""
    return [r for directory in run_directories(Path(path)) for r in by_machine(read_run(directory))]


def by_machine(run: Run) -> list[Run]:
    """A run of `convbench run --cluster` as one run per machine (host and fingerprint), each
    with its rows, samples and the machine's own meta.json (meta["machines"]), labelled
    `label@host`: times from two machines are never one run's. Any other run as it is."""
    machines = run.meta.get("machines") or {}
    if not machines:
        return [run]
    # A case whose task failed on every try ran on no machine: its rows (status error) stay,
    # under the client's meta.json, labelled @none.
    hosts, prints = run.frame["host"].fillna(""), run.frame["fingerprint"].fillna("")
    groups = run.frame.groupby([hosts, prints], sort=True)
    if groups.ngroups == 1 and len(machines) == 1:
        return [_machine_run(run, run.label, next(iter(machines.values())), run.frame)]
    return [_machine_run(run, f"{run.label}@{host or 'none'}" + (
                f"/{fp}" if _hosts_twice(run) else ""), machines.get(f"{host}/{fp}") or {}, frame)
            for (host, fp), frame in groups]


def _hosts_twice(run: Run) -> bool:
    """Whether some host ran with two fingerprints (then labels need the fingerprint too)."""
    pairs = run.frame[["host", "fingerprint"]].drop_duplicates()
    return bool(pairs["host"].duplicated().any())


def _machine_run(run: Run, label: str, machine: dict[str, Any], frame: pd.DataFrame) -> Run:
    """The part of `run` that one machine measured, under that machine's meta.json (the suite,
    settings and cluster as the client recorded them)."""
    meta = machine_meta(run.meta, machine)
    keys = {sample_key(row) for row in frame.to_dict("records")}
    return Run(run.directory, label, meta, frame.reset_index(drop=True),
               {k: v for k, v in run.samples.items() if k in keys},
               {k: v for k, v in run.processes.items() if k in keys})


def machine_meta(run_meta: dict[str, Any], machine: dict[str, Any]) -> dict[str, Any]:
    """The meta.json of one machine's part of a --cluster run: the machine's own, under the
    suite and cluster as the client recorded them."""
    return {k: v for k, v in run_meta.items() if k != "machines"} | machine | {
        "suite": run_meta.get("suite") or machine.get("suite"), "cluster": run_meta.get("cluster")}


def row_machine_meta(run_meta: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """The meta.json a row's run has in `by_machine`: its machine's for a --cluster run, else
    the run's own."""
    machines = run_meta.get("machines") or {}
    if not machines:
        return run_meta
    host, fingerprint = row.get("host") or "", row.get("fingerprint") or ""
    return machine_meta(run_meta, machines.get(f"{host}/{fingerprint}") or {})


def _labels(directories: Sequence[Path]) -> list[str]:
    """Names for the directories: the fewest trailing path parts that tell them apart."""
    parts = [d.resolve().parts for d in directories]
    for count in range(1, max(len(p) for p in parts) + 1):
        names = ["/".join(p[-count:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return [str(d) for d in directories]


def load_runs(paths: Sequence[Path]) -> list[Run]:
    """Every run under `paths`, each directory once, labelled apart from the others;
    ValueError naming the first that cannot be read."""
    directories = list(dict.fromkeys(d.resolve() for p in paths for d in run_directories(p)))
    return [r for label, d in zip(_labels(directories), directories, strict=True)
            for r in by_machine(read_run(d, label))]
