"""`convbench describe DESCRIPTOR|SUITE`: the shape facts of one problem, or of a suite's cases
(with the receptive field layer by layer when the suite is a network in order). A descriptor may
be convbench's own or benchdnn's (``mb96ic3ih227oc96oh55kh11sh4ph0n"alexnet:conv1"``, options
first when they matter: ``--pool --alg=avg_p mb1ic64ih56oh28kh2sh2``); a suite read from a
benchdnn file shows each case's benchdnn repro line; an ONNX file or a torch model (--model) is
described as the suite of its layers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from convbench.commands.args import (add_model_options, is_model_file, model_networks,
                                     network_lines)
from convbench.commands.output import print_notes
from convbench.problems.benchdnn import is_benchdnn, parse_repro, repro_line
from convbench.problems.describe import NETWORK_COLUMNS, SUITE_COLUMNS, describe_rows, suite_rows
from convbench.problems.descriptor import parse
from convbench.problems.family import Problem
from convbench.run.suite import Suite, builtin_suites, load_suite


def add_parser(commands: Any) -> None:
    describe = commands.add_parser(
        "describe", help="shape facts of a problem descriptor or of a suite",
        description="Output size, parameters, MACs/FLOPs (per direction), bytes, intensity, "
        "receptive field and im2col workspace of a problem given as a descriptor such as "
        "n8c64h56k64r3p1, bwd_data_n8c64h56k64r3p1, maxpool_n1c64h112r3st2p1 or "
        "deconv_n1c64h16k32r4st2p1, or in benchdnn's syntax (mb8ic64ih56oc64oh56kh3ph1, with "
        "--pool, --dir=BWD_D, ... before it); or, given a suite (a shipped name, a .toml path or "
        "a benchdnn batch file), every case's output and FLOPs, and for a network suite the "
        "receptive field after each layer; an ONNX file (.onnx) or a torch model (--model SPEC) "
        "as the suite of its layers.")
    describe.add_argument("target", nargs="?", metavar="DESCRIPTOR|SUITE|MODEL.onnx")
    add_model_options(describe)


def _is_suite(target: str) -> bool:
    return target in builtin_suites() or target.endswith(".toml") or Path(target).is_file()


def _describe_problem(target: str, console: Console) -> None:
    if not is_benchdnn(target):
        _print_problem(parse(target), None, console)
        return
    line = parse_repro(target)
    for note in line.options.ignored + line.options.common:
        console.print(f"[yellow]note:[/] {escape(note)}: not modelled by convbench, ignored")
    for problem in line.problems:
        _print_problem(problem, line.name, console)


def _print_problem(problem: Problem, name: str | None, console: Console) -> None:
    table = Table(title=escape(f"{name}: {problem}" if name else str(problem)), show_header=False)
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for quantity, value in describe_rows(problem):
        table.add_row(quantity, value)
    table.add_row("benchdnn", escape(_repro(problem, name)))
    table.add_row("algo='auto' (modelled)", escape(_auto(problem)))
    console.print(table)


def _auto(problem: Problem) -> str:
    """What auto would run on numpy arrays, by which rates: auto.explain."""
    from convbench.algorithms import auto

    try:
        return auto.explain(problem)
    except (ValueError, TypeError, AttributeError) as error:
        return f"not priced: {error}"


def _repro(problem: Problem, name: str | None) -> str:
    """The problem's benchdnn repro line, or why it has none."""
    try:
        return repro_line(problem, name)
    except ValueError as error:
        return f"none: {error}"


def _describe_suite(suite: Suite, console: Console, one_path: bool = True) -> None:
    """The suite's cases; for a network that is one path in order (`one_path`: not a model's
    or a shape file's merged, branching layers), the receptive field after each."""
    print_notes(console, suite)
    repro = suite.syntax == "benchdnn"
    path = suite.network and one_path and not repro
    caption = "receptive field: r_n = r_(n-1) + (k'-1) * jump_(n-1), jump_n = s_1 * ... * s_n" \
        if path else None
    table = Table(title=f"{suite.name}: {escape(suite.description)}", caption=caption)
    columns = SUITE_COLUMNS + (NETWORK_COLUMNS if path else ()) + (
        ("count", "benchdnn") if repro else ())
    for column in columns:
        table.add_column(column, justify="left" if column in ("case", "descriptor", "benchdnn")
                         else "right")
    rows = suite_rows([(c.name, c.problem) for c in suite.cases], path)
    for row, case in zip(rows, suite.cases, strict=True):
        extra = (str(case.count), _repro(case.problem, case.name)) if repro else ()
        table.add_row(*(escape(cell) for cell in row + extra))
    console.print(table)


def _describe_models(args: argparse.Namespace, console: Console) -> None:
    """Each model named (an ONNX file, --model) as the suite of its layers, then what was left
    out of it. No receptive field: its cases are merged and its branches (a ResNet's
    downsample) are not one path."""
    files = [args.target] if args.target and is_model_file(args.target) else []
    for network in model_networks(args, files):
        _describe_suite(network.suite(), console, one_path=False)
        for line in network_lines(network):
            console.print(escape(line))


def main(args: argparse.Namespace, console: Console) -> int:
    if args.model or args.input or (args.target and is_model_file(args.target)):
        _describe_models(args, console)
        if not args.target or is_model_file(args.target):
            return 0
    if args.target is None:
        raise ValueError("give a DESCRIPTOR, a SUITE, an ONNX file or --model SPEC")
    if _is_suite(args.target):
        _describe_suite(load_suite(args.target), console)
    else:
        _describe_problem(args.target, console)
    return 0
