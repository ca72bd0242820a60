"""`convbench machine`: measure this machine's SGEMM GFLOP/s and copy bandwidth and calibrate
the cost model auto ranks algorithms with (convbench.measure.calibrate), or show the cached
figures and whether they can be trusted."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.markup import escape

from convbench.algorithms import auto, cost
from convbench.backends import compiled
from convbench.commands.args import positive_int
from convbench.measure import calibrate, machine

EXIT_OK, EXIT_LOADED = 0, 1


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "machine", help="measure SGEMM GFLOP/s and copy bandwidth of this machine",
        description="Measure numpy's float32 GEMM rate and a large copy's bandwidth in rounds "
        "while watching the other processes' load, until the best two quiet rounds agree. "
        "Cache them per machine fingerprint only when the machine was quiet (exit 1 otherwise, "
        "nothing cached), and print them. Every run copies them into its meta.json. Then "
        "pick the GEMM engine of numpy arrays' large products (numpy's BLAS, or torch's "
        "where its GEMMs are 5% faster, geometric mean over the large and narrow ones) and "
        "calibrate the cost model's rates (GEMM at large and narrow sizes by that engine, "
        "copies, strided runs, FFTs, per-call overhead) that "
        "algo='auto' ranks algorithms with, and cache them beside the peaks; a failed or "
        "loaded calibration leaves the default rates.")
    parser.add_argument("--threads", type=positive_int,
                        help="threads (default: all the CPUs this process may use)")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--cached", action="store_true",
                      help="print the cached figures if current; measure otherwise")
    when.add_argument("--show", action="store_true",
                      help="print the cached figures and whether they can be trusted; "
                      "measure nothing")
    parser.add_argument("--force", action="store_true",
                        help="cache the figures even when measured under load (marked forced)")


def threads_of(args: argparse.Namespace) -> int:
    """--threads, checked against the CPUs this process may run on (its affinity)."""
    limit = machine.usable_cpus()
    threads = args.threads or limit
    if threads > limit:
        raise ValueError(f"--threads {threads} is more than the {limit} CPUs this process "
                         "may use")
    return threads


def status(record: dict[str, Any]) -> str:
    """One line: when the peak was measured, under what load, until when it holds."""
    note = machine.peak_note(record)
    if note:
        return f"peak {note}"
    return (f"peak measured {record['measured_at'][:10]}, quiet (other processes "
            f"{record['other_load']:.0%}), valid until {record['expires_at'][:10]}")


def _print(record: dict[str, Any], console: Console) -> None:
    console.print(f"SGEMM ({record['sgemm_size']}^3, {record['threads']} threads): "
                  f"{record['sgemm_gflops']:.1f} GFLOP/s")
    console.print(f"copy ({record['copy_bytes'] // 2**20} MiB, read + write): "
                  f"{record['copy_gbytes_per_s']:.1f} GB/s")
    console.print(escape(status(record)))


def _rounds(record: dict[str, Any], console: Console) -> None:
    for i, r in enumerate(record["rounds"], start=1):
        console.print(f"round {i}: SGEMM {r['sgemm_gflops']:.1f} GFLOP/s, copy "
                      f"{r['copy_gbytes_per_s']:.1f} GB/s, other processes {r['other_load']:.0%}")


def _show(threads: int, console: Console) -> int:
    record = machine.cached(threads)
    if record is None:
        console.print(f"not measured: no cached peaks for this machine at {threads} threads "
                      f"in {escape(str(machine.cache_dir()))} (convbench machine measures them)")
    else:
        _print(record, console)
        console.print(json.dumps(record), soft_wrap=True, markup=False)
    model, source = calibrate.load(threads)
    _print_model(model, source, console)
    return EXIT_OK


def _print_model(record: dict[str, Any] | None, source: str, console: Console) -> None:
    if record is None:
        console.print(f"cost model: default rates ({escape(source)})")
        return
    rates = record["rates"]
    console.print(
        f"cost model ({escape(source)}): GEMM {rates['gemm_flops_per_s'] / 1e9:.0f} GFLOP/s, "
        f"half rate at {rates['gemm_half_size']:.0f} wide, {rates['gemm_call_s'] * 1e9:.0f} "
        f"ns a GEMM; copy {rates['copy_bytes_per_s'] / 1e9:.1f} GB/s written, "
        f"{rates['run_s'] * 1e9:.1f} ns a strided run; FFT "
        f"{rates['transform_flops_per_s'] / 1e9:.1f} GFLOP/s; {rates['call_s'] * 1e6:.2f} us "
        f"a call; L2 {rates.get('cache_bytes', 0) // 1024} KiB; compiled loops "
        + _loops(rates) + "; GEMM engine " + _engine(record))


def _engine(record: dict[str, Any]) -> str:
    """The GEMM engine the record picked and each engine's rate, or why none."""
    engines = record.get("gemm_engines_flops_per_s")
    if not engines:
        return "numpy (a record from before the engines were compared)"
    measured = ", ".join(f"{name} {rate / 1e9:.0f}" for name, rate in engines.items())
    return (f"{record.get('gemm_engine', 'numpy')} ({measured} GFLOP/s, geometric mean over "
            "the large and narrow GEMMs)")


def _loops(rates: dict[str, Any]) -> str:
    """The compiled loops' rate, or why the model has none."""
    if "compiled_flops_per_s" in rates:
        return f"{rates['compiled_flops_per_s'] / 1e9:.0f} GFLOP/s"
    if not compiled.enabled():
        return "off (numba missing or CONVBENCH_COMPILED=0)"
    return (f"not calibrated (a record from before the kernels were calibrated: the default "
            f"{cost.DEFAULTS.compiled_flops_per_s / 1e9:.0f} GFLOP/s)")


def _calibrate(threads: int, force: bool, console: Console) -> None:
    """Calibrate the cost model and cache it; on any failure say why and leave the defaults."""
    try:
        record = auto.calibrate(threads)
        path = calibrate.save(record, force=force)
    except Exception as error:  # a failed calibration must not fail the peaks' command
        console.print(f"cost model not calibrated, auto keeps the default rates: "
                      f"{escape(str(error))}")
        return
    _print_model(record, f"calibrated in {record['took_s']:.1f} s, stored as {path.name}",
                 console)


def _measure(threads: int, force: bool, console: Console) -> int:
    record = machine.measure_peaks(threads)
    _rounds(record, console)
    if record["under_load"] and not force:
        _print(record, console)
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"convbench: error: not cached: {escape(record['warning'])}; measure again on a "
            "quiet machine, or pass --force to cache it marked as measured under load")
        return EXIT_LOADED
    record = machine.save(record, force=force)
    _print(record, console)
    console.print(f"stored in {escape(str(machine.cache_dir()))} as "
                  f"machine-{record['fingerprint']}.json")
    console.print(json.dumps(record), soft_wrap=True, markup=False)
    _calibrate(threads, force, console)
    return EXIT_OK


def main(args: argparse.Namespace, console: Console) -> int:
    threads = threads_of(args)
    if args.show:
        return _show(threads, console)
    found = machine.cached(threads) if args.cached else None
    if found is not None and not machine.is_expired(found):
        _print(found, console)
        console.print(json.dumps(found), soft_wrap=True, markup=False)
        return EXIT_OK
    return _measure(threads, args.force, console)
