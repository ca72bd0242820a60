"""benchdnn's batch and shape files (oneDNN's tests/benchdnn/inputs/) read as the cases of a suite.

A file is read the way benchdnn reads one (common.cpp `batch`): whitespace-separated tokens, a
token starting with ``#`` comments out the rest of its line, a token ending in ``\\`` joins the
next. Tokens are, in order:

- ``--batch=FILE``: that file's tokens here; FILE is found beside the file naming it, then in
  the current directory, then in the driver's folder beside it (``../conv/FILE``: benchdnn's
  inputs/<driver>/). Options set inside stay set after it, as in benchdnn.
- ``--reset``: the driver's options back to their defaults.
- ``--match=REGEX``: only the configurations whose repro line the regex finds, as in benchdnn.
- ``--conv``, ``--deconv``, ``--pool`` (or ``--driver=NAME``): the driver for what follows,
  with its default options. Before any, the driver is the name of the file's folder when that
  is conv, deconv or pool (oneDNN keeps a driver's files in inputs/<driver>/), else conv; the
  caller may name another. A driver convbench does not read (``--ip``) has its descriptors
  skipped, and said so.
- an option: ``--dir``, ``--dt``/``--cfg``, ``--mb``, pooling's ``--alg``, ``--bia-dt`` and the
  source's memory tag change the problem (convbench.problems.benchdnn); every other option
  (``--attr-*``, ``--skip-impl``, ``--engine``, conv's ``--alg``, ...) is not modelled: it is
  reported once, with how many descriptors it was in force for.
- a descriptor: one case per combination of the options' values, named after its ``n"..."``
  (the descriptor itself without one), with ``_<direction>`` (``_f64``, ``_mb16``, ``_avg_np``,
  ...) when the options give it several; a name ending in ``*N`` is N occurrences of the layer
  (the case's count). A name used again gets ``#2``, ``#3``.

A descriptor benchdnn would refuse (or a bad option value, a missing file) raises
BenchdnnFileError naming the file and line. One benchdnn accepts but convbench cannot represent
(a data type other than f32 and f64, an output that needs the input cropped, a pooling padding
over half its window) is skipped and reported: the rest of the file still runs.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from convbench.problems.benchdnn import (ALL_DRIVERS, DRIVERS, Options, parse_descriptor,
                                         to_problem, unmodelled)
from convbench.problems.family import Problem

SHOWN_SKIPS = 5  # skipped descriptors listed one by one; the rest are counted
_COUNT = re.compile(r"^(.*)\*(\d+)$")


class BenchdnnFileError(ValueError):
    """A batch file benchdnn would refuse too; the message names the file and the line."""


@dataclass(frozen=True)
class FileCase:
    """One case read from a batch file: its name, problem and count, and where it was."""

    name: str
    problem: Problem
    count: int
    where: str  # FILE:LINE
    descriptor: str  # as written in the file


@dataclass(frozen=True)
class BatchFile:
    """A batch file read whole: its cases, and what convbench reports of it once."""

    path: Path
    driver: str  # the driver the file started with
    cases: tuple[FileCase, ...]
    notes: tuple[str, ...]

    @property
    def title(self) -> str:
        """What the file is, for a suite's description: its first comment, if it has one."""
        comment = next((line.lstrip("#").strip() for line in self.path.read_text(
            encoding="utf-8").splitlines() if line.startswith("#") and line.strip("# ")), "")
        return f"benchdnn --{self.driver} file" + (f": {comment}" if comment else "")


def default_driver(path: Path) -> str:
    """The driver of a file before it names one: its folder's name if that is a driver
    convbench reads (oneDNN's inputs/conv/, inputs/pool/), else conv."""
    return path.parent.name if path.parent.name in DRIVERS else "conv"


def read_batch_file(path: str | Path, driver: str | None = None) -> BatchFile:
    """Read `path` (and the files it names) into cases; BenchdnnFileError when benchdnn would
    refuse it."""
    path = Path(path)
    driver = driver or default_driver(path)
    if driver not in DRIVERS:
        raise BenchdnnFileError(f"{path}: driver {driver!r} is not one convbench reads "
                                f"({', '.join(DRIVERS)})")
    reader = _Reader(Options(driver=driver))
    reader.read(path, [])
    if not reader.cases:
        why = [n for n in reader.notes() if "skipped" in n][:1]
        raise BenchdnnFileError(f"{path}: no descriptor convbench can run in it"
                                + (f" ({why[0].rstrip(':')})" if why else ""))
    return BatchFile(path, driver, tuple(reader.cases), tuple(reader.notes()))


def _tokens(path: Path) -> list[tuple[int, str]]:
    """(line number, token) as benchdnn's `batch` splits a file."""
    found: list[tuple[int, str]] = []
    joining = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        for token in line.split():
            if token.startswith("#"):
                break
            start = number
            if joining and found:  # the joined token is where it began
                start, first = found.pop()
                token = first + token
            joining = token.endswith("\\")
            token = token.rstrip("\\") if joining else token
            if token:
                found.append((start, token))
    return found


def split_name(name: str) -> tuple[str, int]:
    """A benchdnn name and its count: 'resnet_50:res2a_branch2b*3' is 3 occurrences."""
    match = _COUNT.match(name)
    if match and match.group(1) and int(match.group(2)) >= 1:
        return match.group(1), int(match.group(2))
    return name, 1


@dataclass
class _Reader:
    options: Options
    cases: list[FileCase] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    in_force: Counter[str] = field(default_factory=Counter)  # option token -> descriptors
    skipped: list[str] = field(default_factory=list)  # FILE:LINE: why
    unmodelled: Counter[str] = field(default_factory=Counter)  # why -> configurations
    other_driver: Counter[str] = field(default_factory=Counter)
    unmatched: Counter[str] = field(default_factory=Counter)  # --match pattern -> left out
    adjoint: int = 0  # deconv descriptors run in a backward direction

    def read(self, path: Path, stack: list[Path]) -> None:
        if path.resolve() in stack:
            raise BenchdnnFileError(f"{stack[-1]}: --batch={path.name} includes itself")
        try:
            tokens = _tokens(path)
        except UnicodeDecodeError as error:
            raise BenchdnnFileError(f"{path}: not text: byte {error.start} is not UTF-8") from None
        for number, token in tokens:
            try:
                self.token(path, number, token, [*stack, path.resolve()])
            except BenchdnnFileError:
                raise
            except ValueError as error:
                raise BenchdnnFileError(f"{path}:{number}: {error}") from None

    def token(self, path: Path, number: int, token: str, stack: list[Path]) -> None:
        name, _, value = token.partition("=")
        if name == "--batch":
            self.read(_locate(path, value, self.options.driver), stack)
        elif name == "--reset":
            self.options = self.options.reset()
        elif token[2:] in ALL_DRIVERS or name == "--driver":
            driver = value if name == "--driver" else token[2:]
            self.options = Options(driver=driver, common=self.options.common)
        elif token.startswith("-"):
            self.options = self.options.with_option(token)
        elif self.options.driver not in DRIVERS:
            self.other_driver[self.options.driver] += 1
        else:
            self.descriptor(f"{path}:{number}", token)

    def descriptor(self, where: str, text: str) -> None:
        desc = parse_descriptor(text, self.options.driver)
        self.in_force.update(self.options.ignored + self.options.common)
        base, count = split_name(desc.name or desc.text)
        for labels, setting in self.options.settings():
            why = unmodelled(desc.driver, setting)
            if why:
                self.unmodelled[why] += 1
                continue
            try:
                problem = to_problem(desc, setting)
            except ValueError as error:
                self.skipped.append(f"{where}: {error}")
                continue
            if not self.options.matches(problem, desc.name):
                self.unmatched[self.options.match or ""] += 1
                continue
            if desc.driver == "deconv" and problem.family == "conv":
                self.adjoint += 1
            name = self.unique("_".join((base, *labels)))
            self.cases.append(FileCase(name, problem, count, where, text))

    def unique(self, name: str) -> str:
        found, copy = name, 1
        while found in self.names:
            copy += 1
            found = f"{name}#{copy}"
        self.names.add(found)
        return found

    def notes(self) -> list[str]:
        """What convbench reports of the file, once: the options it did not model, what it
        skipped and why."""
        notes = [f"{token}: not modelled by convbench, ignored ({_plural(n, 'descriptor')})"
                 for token, n in self.in_force.items()]
        notes += [f"--{driver}: not a driver convbench reads; {_plural(n, 'descriptor')} "
                  "skipped" for driver, n in self.other_driver.items()]
        notes += [f"--match={pattern}: {_plural(n, 'configuration')} not matching it left out, "
                  "as benchdnn does" for pattern, n in self.unmatched.items()]
        if self.adjoint:
            notes.append(f"{_plural(self.adjoint, 'deconv case')} in a backward direction run "
                         "as the convolution it transposes (BWD_D: its fwd; BWD_W, BWD_WB: its "
                         "bwd_weight, without the bias gradient)")
        notes += [f"{why}; {_plural(n, 'configuration')} skipped"
                  for why, n in self.unmodelled.items()]
        if self.skipped:
            notes.append(f"{_plural(len(self.skipped), 'configuration')} skipped, convbench "
                         "cannot represent them:")
            notes += [f"  {line}" for line in self.skipped[:SHOWN_SKIPS]]
            if len(self.skipped) > SHOWN_SKIPS:
                notes.append(f"  ... and {len(self.skipped) - SHOWN_SKIPS} more")
        return notes


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _locate(including: Path, name: str, driver: str) -> Path:
    """A --batch file: beside the file naming it, in the current directory, or in the driver's
    folder beside that file's folder (benchdnn's inputs/<driver>/)."""
    if not name:
        raise ValueError("--batch= names no file")
    candidates = [including.parent / name, Path(name), including.parent.parent / driver / name]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ValueError(f"--batch={name}: no such file beside {including} (nor in the current "
                     f"directory, nor in {including.parent.parent / driver})")


__all__ = ["BatchFile", "BenchdnnFileError", "FileCase", "default_driver", "read_batch_file",
           "split_name"]
