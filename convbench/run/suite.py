"""Suites: TOML files of named cases, read and checked whole before anything runs.

    [suite]
    description = "what this suite is for"
    batch = 8                                   # optional: N for every case
    algorithms = ["direct", "im2col", "torch"]  # optional: default every registered one
    backends = ["numpy"]
    reference = "torch"                         # speedups are relative to it
    budget_s = 0.5                              # timing budget per case x algorithm
    min_repeats = 5
    limit_s = 20.0                              # hard cap per case x algorithm
    exact = false                               # benchdnn-style integer filling
    prepare_weights = false                     # inference-like: filter transforms untimed
    seed = 0
    directions = ["bwd_data", "bwd_weight"]     # optional: every case in each direction
    layouts = ["nchw", "nhwc"]                  # optional: every case in each memory layout
    network = false                             # true: the cases are a network's layers in order

    [[case]]
    name = "rn50_conv1"
    descriptor = "c3h224k64r7st2p3"             # or fields: n c h w k r s stride padding ...
    direction = "bwd_data"                      # optional: a direction or a list of them
    count = 1                                   # optional: how often the layer occurs

Descriptors name pooling (`maxpool_`, `avgpool_`), transposed convolutions (`deconv_`) and the
direction (`bwd_data_`, `bwd_weight_`) by prefix, so one suite may mix ops; a suite-wide
`algorithms` list applies to the ops that have each algorithm. Directions: a case's `direction`
(a name or a list) wins over the suite's `directions`, which applies to the cases whose
descriptor names none. A case run in several directions becomes one case per direction, named
`<name>_<direction>`. Layouts alike: `layouts` runs every case whose descriptor names none
(`nhwc_` names channels last) in each memory layout, as `<name>_<layout>` when there are
several; the reference runs torch in the same memory format, and an algorithm that does not
declare a layout is `unsupported` in it, with that reason (a layout change is never timed).

`network = true` says the cases are the layers of one network (one path through it, pooling
included) in order, so that `convbench describe SUITE` can compute the receptive field layer by
layer.

A malformed suite raises SuiteError naming the file, the line and the field.

A path that is not TOML (no .toml suffix, no [suite] or [[case]] table) is a benchdnn batch or
shape file (convbench.run.benchdnn_files): its cases come from benchdnn's descriptors, and what
convbench does not model of it is in the suite's `notes`, for the commands to print once.
"""

from __future__ import annotations

import importlib.resources
import math
import re
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from convbench.algorithms import registry
from convbench.backends import BACKENDS
from convbench.run.benchdnn_files import read_batch_file
from convbench.problems.descriptor import parse
from convbench.problems import DIRECTIONS, DTYPES, LAYOUTS, ConvProblem, Problem
from convbench.algorithms.registry import DEFAULT_REFERENCE

_PROBLEM_FIELDS = {"n", "c", "h", "w", "k", "r", "s", "stride", "padding", "dilation", "groups",
                   "bias", "dtype"}
_SUITE_KEYS = {"description", "batch", "algorithms", "backends", "reference", "budget_s",
               "min_repeats", "limit_s", "exact", "prepare_weights", "seed", "dtype",
               "directions", "network", "layouts"}
_CASE_KEYS = {"name", "descriptor", "direction", "count"}


class SuiteError(ValueError):
    """A suite file that cannot be used; the message names file, line and field."""


@dataclass(frozen=True)
class Case:
    name: str
    problem: Problem
    count: int = 1  # how often the layer occurs in its network (a plan's time is time x count)


@dataclass(frozen=True)
class Suite:
    name: str
    path: str
    cases: tuple[Case, ...]
    description: str = ""
    algorithms: tuple[str, ...] | None = None
    backends: tuple[str, ...] = ("numpy",)
    reference: str = DEFAULT_REFERENCE
    budget_s: float = 0.5
    min_repeats: int = 5
    limit_s: float = 20.0
    exact: bool = False
    prepare_weights: bool = False
    seed: int = 0
    network: bool = False  # the cases are one network's layers in order
    syntax: str = "toml"  # or "benchdnn": read from a benchdnn batch file
    notes: tuple[str, ...] = ()  # what convbench did not model of the file, said once

    def with_batch(self, batch: int) -> Suite:
        """The same suite with every case's N set to `batch`."""
        if not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a positive int, got {batch!r}")
        cases = tuple(replace(c, problem=replace(c.problem, n=batch)) for c in self.cases)
        return replace(self, cases=cases)


def builtin_suites() -> dict[str, Path]:
    """The suites shipped with convbench, by name."""
    folder = importlib.resources.files("convbench.suites")
    return {
        entry.name.removesuffix(".toml"): Path(str(entry))
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    }


def resolve(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            why = "is not a file" if path.exists() else "does not exist"
            raise SuiteError(f"suite file {name_or_path!r} {why}")
        return path
    shipped = builtin_suites()
    if name_or_path not in shipped:
        raise SuiteError(
            f"no suite named {name_or_path!r} (shipped: {', '.join(sorted(shipped))}; "
            "or give a path to a .toml file or to a benchdnn batch file)"
        )
    return shipped[name_or_path]


class _Locator:
    """Maps (table, key) back to a line of the source, for error messages."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.lines = path, text.splitlines()

    def _table_start(self, header: str, index: int) -> int:
        pattern = re.compile(rf"^\s*{re.escape(header)}\s*(#.*)?$")
        starts = [i for i, line in enumerate(self.lines) if pattern.match(line)]
        return starts[index] if index < len(starts) else 0

    def line(self, header: str, index: int, key: str | None) -> int:
        start = self._table_start(header, index)
        if key is not None:
            for i in range(start + 1, len(self.lines)):
                if self.lines[i].lstrip().startswith("["):
                    break
                if re.match(rf"^\s*{re.escape(key)}\s*=", self.lines[i]):
                    return i + 1
        return start + 1

    def error(self, header: str, index: int, key: str | None, message: str) -> SuiteError:
        where = f"{self.path}:{self.line(header, index, key)}:"
        field = f" field {key!r}:" if key else ""
        return SuiteError(f"{where}{field} {message}")


def _problem(raw: dict[str, Any], defaults: dict[str, Any]) -> Problem:
    if "descriptor" in raw:
        descriptor = str(raw["descriptor"])
        problem = parse(descriptor)
        if "dtype" in defaults and not re.search(r"f(32|64)", descriptor):
            problem = replace(problem, dtype=defaults["dtype"])
        return problem
    values = {k: v for k, v in raw.items() if k in _PROBLEM_FIELDS}
    values.setdefault("n", 1)
    values.setdefault("w", values.get("h"))
    values.setdefault("s", values.get("r"))
    values.setdefault("dtype", defaults.get("dtype", "float32"))
    for key in ("stride", "padding", "dilation"):
        if isinstance(values.get(key), list):
            values[key] = tuple(values[key])
    missing = [k for k in ("c", "h", "k", "r") if values.get(k) is None]
    if missing:
        raise KeyError(missing[0])
    return ConvProblem(**values)


def _case(raw: dict[str, Any], index: int, loc: _Locator, defaults: dict[str, Any]) -> Case:
    unknown = set(raw) - _PROBLEM_FIELDS - _CASE_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise loc.error("[[case]]", index, key, f"unknown key {key!r}")
    if not isinstance(raw.get("name"), str) or not raw["name"]:
        raise loc.error("[[case]]", index, "name", "every case needs a non-empty string name")
    if "descriptor" in raw and set(raw) & _PROBLEM_FIELDS:
        key = sorted(set(raw) & _PROBLEM_FIELDS)[0]
        raise loc.error("[[case]]", index, key, "give either a descriptor or fields, not both")
    count = raw.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise loc.error("[[case]]", index, "count", f"count must be a positive int (how often "
                        f"the layer occurs), got {count!r}")
    try:
        return Case(raw["name"], _problem(raw, defaults), count)
    except KeyError as missing:
        raise loc.error("[[case]]", index, None, f"case {raw['name']!r} is missing {missing}")
    except (ValueError, TypeError) as error:
        key = _blamed_key(str(error), raw)
        raise loc.error("[[case]]", index, key, f"case {raw['name']!r}: {error}") from None


def _directions(raw: dict[str, Any], case: Case, settings: dict[str, Any]) -> list[str] | None:
    """The directions a case runs in: its own `direction`, else the suite's `directions` unless
    its descriptor names one; None to keep the problem as it is."""
    if "direction" in raw:
        given = raw["direction"]
        directions = [given] if isinstance(given, str) else given
        if not isinstance(directions, list) or not directions or \
                not all(isinstance(d, str) for d in directions):
            raise ValueError(f"direction must be a direction or a non-empty list of them, "
                             f"got {given!r}")
        if case.problem.direction != "fwd":
            raise ValueError(f"the descriptor already names direction {case.problem.direction}")
        return directions
    if case.problem.direction != "fwd":
        return None
    return settings.get("directions")


def _directed(case: Case, raw: dict[str, Any], index: int, loc: _Locator,
              settings: dict[str, Any]) -> list[Case]:
    """The case in each of its directions: one Case per direction, named <name>_<direction>
    when there are several."""
    key = "direction" if "direction" in raw else None
    try:
        directions = _directions(raw, case, settings)
        if directions is None:
            return [case]
        if "direction" not in {f.name for f in fields(case.problem)} and directions != ["fwd"]:
            raise ValueError(f"{case.problem.op} has only the fwd direction")
        problems = [replace(case.problem, direction=d) if d != "fwd" else case.problem
                    for d in directions]
    except ValueError as error:
        raise loc.error("[[case]]", index, key, f"case {case.name!r}: {error}") from None
    if len(problems) == 1:
        return [replace(case, problem=problems[0])]
    return [Case(f"{case.name}_{p.direction}", p, case.count) for p in problems]


def _laid_out(case: Case, settings: dict[str, Any]) -> list[Case]:
    """The case in each of the suite's memory layouts, named <name>_<layout> when there are
    several; a descriptor that names its layout (nhwc_) keeps it."""
    layouts = settings.get("layouts")
    if not layouts or case.problem.layout != "nchw" or str(case.problem).startswith(
            ("nhwc_", "bwd_data_nhwc_", "bwd_weight_nhwc_")):
        return [case]
    if len(layouts) == 1:
        return [replace(case, problem=replace(case.problem, layout=layouts[0]))]
    return [Case(f"{case.name}_{layout}", replace(case.problem, layout=layout), case.count)
            for layout in layouts]


def _blamed_key(message: str, raw: dict[str, Any]) -> str | None:
    """The case key an error message is about, for the line number."""
    if "descriptor" in raw:
        return "descriptor"
    for key in raw:
        if re.search(rf"\b{re.escape(key)}\b", message):
            return key
    return None


_SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "description": (str,), "batch": (int,), "algorithms": (list,), "backends": (list,),
    "reference": (str,), "budget_s": (int, float), "min_repeats": (int,),
    "limit_s": (int, float), "exact": (bool,), "prepare_weights": (bool,), "seed": (int,),
    "dtype": (str,), "directions": (list,), "network": (bool,), "layouts": (list,),
}


def _settings(raw: dict[str, Any], loc: _Locator) -> dict[str, Any]:
    for key, value in raw.items():
        if key not in _SUITE_KEYS:
            raise loc.error("[suite]", 0, key, f"unknown key {key!r}")
        expected = _SETTING_TYPES[key]
        if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
            raise loc.error("[suite]", 0, key, f"{key} has the wrong type: {value!r}")
    if "dtype" in raw and raw["dtype"] not in DTYPES:
        raise loc.error("[suite]", 0, "dtype", f"dtype must be one of {sorted(DTYPES)}, "
                        f"got {raw['dtype']!r}")
    for layout in raw.get("layouts", []):
        if layout not in LAYOUTS:
            raise loc.error("[suite]", 0, "layouts", f"layout must be one of "
                            f"{', '.join(LAYOUTS)} (channels first or last), got {layout!r}")
    for direction in raw.get("directions", []):
        if direction not in DIRECTIONS:
            raise loc.error("[suite]", 0, "directions", f"direction must be one of "
                            f"{', '.join(DIRECTIONS)}, got {direction!r}")
    for key in ("budget_s", "limit_s", "min_repeats", "batch"):  # TOML has nan and inf
        if key in raw and not (0 < raw[key] < math.inf):
            raise loc.error("[suite]", 0, key, f"{key} must be finite and positive, got "
                            f"{raw[key]!r}")
    known = {a.name for a in registry.all_algorithms()}
    for name in raw.get("algorithms", []) + [raw.get("reference", DEFAULT_REFERENCE)]:
        if name not in known:
            key = "reference" if name == raw.get("reference") else "algorithms"
            raise loc.error("[suite]", 0, key, f"unknown algorithm {name!r}")
    for name in raw.get("backends", []):
        if name not in BACKENDS:
            raise loc.error("[suite]", 0, "backends", f"unknown backend {name!r}")
    return raw


def load_suite(name_or_path: str, batch: int | None = None) -> Suite:
    """Read, check and normalise a suite; nothing is run."""
    path = resolve(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise SuiteError(f"{path}: not text: byte {error.start} is not UTF-8") from None
    if path.suffix != ".toml" and not _is_toml(text):
        return _benchdnn_suite(path, batch)
    loc = _Locator(path, text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SuiteError(f"{path}: not valid TOML: {error}") from None
    unknown = set(data) - {"suite", "case"}
    if unknown:
        name = sorted(unknown)[0]
        header = next((h for h in (f"[{name}]", f"[[{name}]]") if h in text), f"[{name}]")
        raise loc.error(header, 0, None, f"unknown table {name!r} (expected [suite], [[case]])")
    settings = _settings(data.get("suite", {}), loc)
    raw_cases = data.get("case", [])
    if not raw_cases:
        raise SuiteError(f"{path}: the suite has no [[case]] entries")
    indexed = [(i, laid_out) for i, raw in enumerate(raw_cases)
               for case in _directed(_case(raw, i, loc, settings), raw, i, loc, settings)
               for laid_out in _laid_out(case, settings)]
    seen: set[str] = set()
    for i, case in indexed:
        if case.name in seen:
            raise loc.error("[[case]]", i, "name", f"case name {case.name!r} is used twice")
        seen.add(case.name)
    suite = _build(path, [case for _, case in indexed], settings)
    batch = settings.get("batch") if batch is None else batch
    return suite if batch is None else suite.with_batch(batch)


def _is_toml(text: str) -> bool:
    """Whether a file without the .toml suffix is a TOML suite (it has its tables) rather than
    a benchdnn batch file."""
    if re.search(r"^\s*\[(suite|\[case\])\]", text, re.MULTILINE):
        return True
    try:
        return bool({"suite", "case"} & set(tomllib.loads(text)))
    except tomllib.TOMLDecodeError:
        return False


def _benchdnn_suite(path: Path, batch: int | None) -> Suite:
    """A benchdnn batch or shape file as a suite: one case per descriptor and setting."""
    try:
        read = read_batch_file(path)
    except ValueError as error:
        raise SuiteError(str(error)) from None
    cases = tuple(Case(c.name, c.problem, c.count) for c in read.cases)
    suite = Suite(name=path.stem, path=str(path), cases=cases, description=read.title,
                  syntax="benchdnn", notes=read.notes)
    return suite if batch is None else suite.with_batch(batch)


def _build(path: Path, cases: list[Case], settings: dict[str, Any]) -> Suite:
    names = {f.name for f in fields(Suite)}
    options = {k: v for k, v in settings.items() if k in names}
    for key in ("algorithms", "backends"):
        if key in options:
            options[key] = tuple(options[key])
    return Suite(name=path.stem, path=str(path), cases=tuple(cases), **options)
