"""The argument types the commands share: argparse calls them on the text given, and their names
appear in its error messages ("invalid positive_int value: '0'"). Also the checks that need more
than the text, made before a command does any work: an output directory it can write in, and a
results database it can reach. And the models `run` and `describe` take (--model SPEC, a .onnx
file, --input): read into networks, with the lines that say what was read."""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path
from typing import Any

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


def input_spec(text: str) -> tuple[str | None, tuple[int, ...]]:
    """`--input`: '1x3x224x224' -> (None, (1, 3, 224, 224)); 'x=1x3x224x224' names the ONNX
    input it pins."""
    from convbench.models.network import parse_shape

    name, equals, shape = text.rpartition("=")
    try:
        return (name.strip() or None) if equals else None, parse_shape(shape, ranks=None)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """--model, --input and --channels-last: a torch model, or an ONNX file's input shapes."""
    parser.add_argument("--model", action="append", default=[], metavar="SPEC",
                        help="a torch model as package.module:factory (torchvision:resnet50 is "
                        "torchvision.models.resnet50), built without weights on the meta "
                        "device; its conv and pooling layers become the cases")
    parser.add_argument("--input", action="append", default=[], type=input_spec,
                        metavar="[NAME=]SHAPE", help="input shape, e.g. 1x3x224x224 (the "
                        "default for --model); NAME=SHAPE pins an ONNX file's input NAME")
    parser.add_argument("--channels-last", action="store_true",
                        help="--model: trace with the input in channels-last memory")


def is_model_file(target: str) -> bool:
    return target.lower().endswith(".onnx")


def model_networks(args: argparse.Namespace, files: list[str]) -> list[Any]:
    """The models the arguments name, read (convbench.models.Network): each --model, then each
    ONNX file; ValueError naming the argument when one cannot be read."""
    from convbench.models import MissingExtra, read_factory, read_onnx
    from convbench.models.torch_model import DEFAULT_INPUT

    bare = [shape for name, shape in args.input if name is None]
    named = {name: shape for name, shape in args.input if name is not None}
    if len(bare) > 1:
        raise ValueError(f"--input: give one unnamed shape, got {len(bare)}; name an ONNX "
                         "file's inputs as NAME=SHAPE")
    if not args.model and not files and args.input:
        raise ValueError("--input needs --model SPEC or an ONNX file")
    networks = []
    for spec in args.model:
        try:
            networks.append(read_factory(spec, bare[0] if bare else DEFAULT_INPUT,
                                         channels_last=args.channels_last))
        except MissingExtra:
            raise
        except ValueError as error:
            raise ValueError(f"--model {error}") from None
    for path in files:
        networks.append(read_onnx(path, named or (bare[0] if bare else None)))
    return networks


def network_lines(network: Any) -> list[str]:
    """'model torchvision:resnet50 on 1x3x224x224: 55 layers, 25 distinct', then each layer
    left out and each fact a problem does not hold (a padding mode), one line each."""
    lines = [f"model {network.source}: {len(network.layers)} layers, "
             f"{len(network.merged())} distinct"]
    lines += [f"  not modelled: {skipped}" for skipped in network.skipped]
    return lines + [f"  {layer.name}: {layer.note}" for layer in network.layers if layer.note]
