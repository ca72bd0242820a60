"""`convbench describe DESCRIPTOR|SUITE`: the shape facts of one problem, or of a suite's cases
(with the receptive field layer by layer when the suite is a network in order)."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from convbench.commands.args import (add_model_options, is_model_file, model_networks,
                                     network_lines)
from convbench.problems.describe import NETWORK_COLUMNS, SUITE_COLUMNS, describe_rows, suite_rows
from convbench.problems.descriptor import parse
from convbench.run.suite import Suite, builtin_suites, load_suite


def add_parser(commands: Any) -> None:
    describe = commands.add_parser(
        "describe", help="shape facts of a problem descriptor or of a suite",
        description="Output size, parameters, MACs/FLOPs (per direction), bytes, intensity, "
        "receptive field and im2col workspace of a problem given as a descriptor such as "
        "n8c64h56k64r3p1, bwd_data_n8c64h56k64r3p1, maxpool_n1c64h112r3st2p1 or "
        "deconv_n1c64h16k32r4st2p1; or, given a suite (a shipped name or a .toml path), every "
        "case's output and FLOPs, and for a network suite the receptive field after each layer; "
        "an ONNX file (.onnx) or a torch model (--model SPEC) as the suite of its layers.")
    describe.add_argument("target", nargs="?", metavar="DESCRIPTOR|SUITE|MODEL.onnx")
    add_model_options(describe)


def _is_suite(target: str) -> bool:
    return target in builtin_suites() or target.endswith(".toml")


def _describe_problem(target: str, console: Console) -> None:
    problem = parse(target)
    table = Table(title=str(problem), show_header=False)
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for name, value in describe_rows(problem):
        table.add_row(name, value)
    console.print(table)


def _describe_suite(suite: Suite, console: Console, one_path: bool = True) -> None:
    """The suite's cases; for a network that is one path in order (`one_path`: not a model's
    merged, branching layers), the receptive field after each."""
    path = suite.network and one_path
    caption = "receptive field: r_n = r_(n-1) + (k'-1) * jump_(n-1), jump_n = s_1 * ... * s_n" \
        if path else None
    table = Table(title=f"{suite.name}: {escape(suite.description)}", caption=caption)
    for column in SUITE_COLUMNS + (NETWORK_COLUMNS if path else ()):
        table.add_column(column, justify="left" if column in ("case", "descriptor") else "right")
    for row in suite_rows([(c.name, c.problem) for c in suite.cases], path):
        table.add_row(*(escape(cell) for cell in row))
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
