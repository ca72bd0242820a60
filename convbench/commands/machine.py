"""`convbench machine`: measure this machine's SGEMM GFLOP/s and copy bandwidth."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from rich.console import Console

from convbench.commands.args import positive_int
from convbench.measure.machine import cache_dir, peaks


def add_parser(commands: Any) -> None:
    machine = commands.add_parser(
        "machine", help="measure SGEMM GFLOP/s and copy bandwidth of this machine",
        description="Measure numpy's float32 GEMM rate and a large copy's bandwidth, cache them "
        "per machine fingerprint, and print them. Every run copies them into its meta.json.")
    machine.add_argument("--threads", type=positive_int, help="threads (default: all cores)")
    machine.add_argument("--cached", action="store_true",
                         help="print the cached figures if there are any; measure otherwise")


def main(args: argparse.Namespace, console: Console) -> int:
    threads = args.threads or os.cpu_count() or 1
    found = peaks(threads, remeasure=not args.cached)
    console.print(f"SGEMM ({found['sgemm_size']}^3, {threads} threads): "
                  f"{found['sgemm_gflops']:.1f} GFLOP/s")
    console.print(f"copy ({found['copy_bytes'] // 2**20} MiB, read + write): "
                  f"{found['copy_gbytes_per_s']:.1f} GB/s")
    console.print(f"stored in {cache_dir()} as machine-{found['fingerprint']}.json")
    console.print(json.dumps(found), soft_wrap=True, markup=False)
    return 0
