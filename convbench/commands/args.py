"""The argument types the commands share: argparse calls them on the text given, and their names
appear in its error messages ("invalid positive_int value: '0'"). Also the checks that need more
than the text, made before a command does any work: an output directory it can write in, and a
results database it can reach."""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

DATABASE_DIALECTS = ("sqlite", "postgresql")  # the ones convbench's history is tested on


def csv_list(text: str) -> tuple[str, ...]:
    """'im2col, fft,' -> ('im2col', 'fft'); no name at all is an error, not "every one"."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive int, got {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number over zero: 'nan' and 'inf' parse as floats and mean nothing here."""
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite positive number, got {text}")
    return value


def _nearest_existing(path: Path) -> Path:
    """`path` or its closest ancestor that exists (the current directory at worst)."""
    return next((p for p in (path, *path.parents) if p.exists()), Path.cwd())


def check_output_directory(path: Path, option: str) -> None:
    """ValueError naming `option` unless `path` is a directory convbench can write in, or one it
    can create. Tried for real (a temporary directory, removed again): permission bits say
    little to root or on /proc. Nothing is left behind."""
    existing = _nearest_existing(path)
    if not existing.is_dir():
        raise ValueError(f"{option}: {existing} exists and is not a directory")
    try:
        tempfile.TemporaryDirectory(dir=existing).cleanup()
    except OSError as error:
        raise ValueError(f"{option}: cannot write in {existing}: {error.strerror}") from None


def check_suite_directories(out: Path, suites: list[str]) -> None:
    """`--out OUT` for commands that write OUT/SUITE/ per suite: OUT and each of those."""
    check_output_directory(out, f"--out {out}")
    for name in suites:
        check_output_directory(out / name, f"--out {out}")


def check_database_url(db: str, option: str = "--store") -> None:
    """ValueError unless `db` (an SQLAlchemy URL, or a path: an SQLite file) names a dialect
    convbench stores runs in, with its driver installed. Nothing is connected to; the message
    hides a password."""
    if "://" not in db:  # a plain path: an SQLite file (sqlite3 is in the standard library)
        check_output_directory(Path(db).parent, f"{option} {db}")
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        url = make_url(db)
    except ArgumentError:
        raise ValueError(f"{option} {db!r}: not a database URL") from None
    named = f"{option} {url.render_as_string(hide_password=True)}"
    if url.get_backend_name() not in DATABASE_DIALECTS:
        raise ValueError(f"{named}: {url.get_backend_name()} is not supported; use one of "
                         f"{', '.join(DATABASE_DIALECTS)}")
    try:
        url.get_dialect().import_dbapi()
    except (NoSuchModuleError, ImportError) as error:
        raise ValueError(f"{named}: its driver is not installed ({error}); for PostgreSQL: "
                         "pip install 'convbench[postgresql]'") from None
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        check_output_directory(Path(url.database).parent, named)
