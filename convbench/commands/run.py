"""`convbench run SUITE...`: run suites, write results as they come, print the comparison."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from convbench.commands.args import (add_model_options, check_database_url,
                                     check_suite_directories, csv_list, is_model_file,
                                     model_networks, network_lines, positive_float,
                                     positive_int)
from convbench.commands.output import (Output, add_output_options, append_step_summary,
                                       error_console, print_notes, records)

if TYPE_CHECKING:
    import pandas as pd

    from convbench.run.runner import RunOptions
    from convbench.run.suite import Suite

EXIT_OK, EXIT_WRONG, EXIT_INTERRUPTED = 0, 1, 130
# Samples from this many processes by default (convbench.run.processes): measured with
# benchmarks/false_alarms.py (README, "Catching regressions").
PROCESSES = 3
FAILING = ("wrong", "error")  # statuses that make the run exit 1


def add_parser(commands: Any) -> None:
    run = commands.add_parser(
        "run", help="run suites and print the comparison table",
        description="Run suites (shipped names or .toml paths), ONNX files (.onnx) and torch "
        "models (--model); results go to OUT/SUITE/results.csv as each case finishes, with "
        "meta.json beside them. A model's suite is its conv and pooling layers in order, "
        "identical ones merged with their count.")
    run.add_argument("suites", nargs="*", metavar="SUITE|MODEL.onnx")
    run.add_argument("--algo", type=csv_list, help="comma-separated algorithms (default: the "
                     "suite's, else all registered)")
    run.add_argument("--backend", type=csv_list, help="comma-separated backends")
    run.add_argument("--batch", type=positive_int, help="override N for every case")
    run.add_argument("--out", type=Path, default=Path("reports"),
                     help="output directory (default: reports); each suite writes OUT/SUITE/")
    run.add_argument("--resume", action="store_true", help="keep existing rows and run only "
                     "the missing ones (the settings must be those of the rows kept)")
    run.add_argument("--threads", type=positive_int, help="threads (default: 1; on a shared "
                     "machine a second thread mostly waits for a core)")
    run.add_argument("--budget", type=positive_float, help="timing budget per case x "
                     "algorithm, seconds (default: the suite's)")
    run.add_argument("--exact", action="store_true", default=None,
                     help="exactness mode: integer-filled inputs, exact algorithms bit for bit")
    run.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    run.add_argument("--interleave", action=argparse.BooleanOptionalAction, default=True,
                     help="time the algorithms of a case in alternation, round after round, so "
                     "that drift hits them alike (default; --no-interleave: one after another)")
    run.add_argument("--processes", type=positive_int, default=PROCESSES,
                     help=f"processes the samples come from, one after another, each with its "
                     f"share of the budget (default {PROCESSES}); compare judges a change "
                     "against the spread between them")
    run.add_argument("--commit", metavar="REF", help="record REF (resolved in the current "
                     "directory's git repository) as the commit of your project; without it, "
                     "CONVBENCH_COMMIT, GITHUB_SHA or CI_COMMIT_SHA when set, else none")
    run.add_argument("--store", metavar="DB", help="also store the run in a results database "
                     "(SQLAlchemy URL or SQLite path; see `convbench history`)")
    add_model_options(run)
    run.add_argument("--cluster", metavar="ADDRESS", help="run each case on a Dask worker: a "
                     "scheduler's address (tcp://HOST:8786) or local:N for N worker processes "
                     "here; needs pip install convbench[cluster] (README, Scaling out)")
    run.add_argument("--each-machine", action="store_true", help="with --cluster: run every "
                     "case on every timing machine (one suite over a fleet), each machine's rows "
                     "in OUT/SUITE@HOST, a run of its own; the report in OUT/SUITE shows them "
                     "side by side")
    run.add_argument("--shared-machine", action="store_true", help="with --cluster: time on "
                     "two or more timing workers of one machine anyway, every row marked "
                     "shared_machine (refused without it)")
    add_output_options(run)


def main(args: argparse.Namespace, console: Console) -> int:
    # Imported here: building the command line (`convbench list`) stays free of pandas.
    from convbench.run.runner import RunOptions

    output = Output.of(args, console)
    suites = _suites(args, output)  # all read and checked first
    options = RunOptions(algorithms=args.algo, backends=args.backend, threads=args.threads,
                         budget_s=args.budget, exact=args.exact, resume=args.resume,
                         interleave=args.interleave, processes=args.processes,
                         commit=args.commit)
    _check_before_running(args, suites, options)
    for suite in suites:
        print_notes(output.console, suite)
    cluster = _connect(args, options, output)
    done = []
    try:
        for suite in suites:
            try:
                paths, streamed = _run_suite(suite, args.out / suite.name, options, output,
                                             args.no_progress, cluster, args.store,
                                             args.each_machine)
            except KeyboardInterrupt:
                return _interrupted(args.out / suite.name)
            done += [_finish(suite, path, output, args.store, streamed) for path in paths]
            if len(paths) > 1:
                from convbench.report import build_report

                report = build_report([p.parent for p in paths], args.out / suite.name)
                output.console.print(f"the machines side by side: {escape(str(report))}")
    finally:
        if cluster is not None:
            cluster.close()
    return _verdict(done, output)


def _suites(args: argparse.Namespace, output: Output) -> list[Suite]:
    """The suites, ONNX files and --model models named, in that order, as suites; a model's
    layers and what was left out of them are said first."""
    from convbench.run.suite import load_suite

    files = [target for target in args.suites if is_model_file(target)]
    if not args.suites and not args.model and not args.input:
        raise ValueError("give a SUITE, an ONNX file or --model SPEC to run")
    suites = [load_suite(name, batch=args.batch) for name in args.suites
              if not is_model_file(name)]
    for network in model_networks(args, files):
        for line in network_lines(network):
            output.console.print(escape(line))
        suite = network.suite()
        suites.append(suite if args.batch is None else suite.with_batch(args.batch))
    return suites


def _connect(args: argparse.Namespace, options: RunOptions, output: Output) -> Any:
    """With --cluster: the checked cluster (ValueError, before any case runs, when its workers
    cannot time as asked), after one line saying how it will time; else None."""
    if not args.cluster:
        if args.shared_machine or args.each_machine:
            flag = "--shared-machine" if args.shared_machine else "--each-machine"
            raise ValueError(f"{flag} applies to --cluster only")
        return None
    from convbench.run.cluster import connect
    from convbench.run.runner import run_threads

    cluster = connect(args.cluster, args.shared_machine, run_threads(options))
    output.console.print(escape(cluster.how))
    return cluster


def _check_before_running(args: argparse.Namespace, suites: list[Suite],
                          options: RunOptions) -> None:
    """Everything that can be found wrong before anything runs, for every suite: algorithm and
    backend names, the output directories, a resume's settings, the results database."""
    from convbench.run.cluster import ENGINE
    from convbench.run.runner import check_resume, plan

    check_suite_directories(args.out, [suite.name for suite in suites])
    for suite in suites:
        plan(suite, options)
        check_resume(suite, args.out / suite.name, options, ENGINE if args.cluster else None)
    if args.store:
        check_database_url(args.store)


def _run_suite(suite: Suite, out: Path, options: RunOptions, output: Output,
               no_progress: bool, cluster: Any = None, db: str | None = None,
               each_machine: bool = False) -> tuple[list[Path], Any]:
    """Run one suite; with a database, each row is also stored the moment it is written.
    Returns the results paths (one per machine with `each_machine`) and the row stream (None
    without a database)."""
    from convbench.run import cluster as on_cluster
    from convbench.run.progress import RowReporter
    from convbench.run.runner import run

    stream = None
    if db:
        from convbench.analysis.history import RowStream

        stream = RowStream(db, out, suite.name, (lambda row: on_cluster.machine_directory(
            out, str(row["host"]))) if each_machine else None)
    with RowReporter(output.console, suite.name, output.progress_mode(no_progress)) as reporter:
        def on_row(row: dict[str, Any], index: int, total: int) -> None:
            reporter.on_row(row, index, total)
            if stream is not None:
                stream.add(row)

        try:
            if cluster is not None and each_machine:
                return on_cluster.run_each_machine(suite, out, options, cluster, on_row), stream
            if cluster is not None:
                return [on_cluster.run(suite, out, options, cluster, on_row=on_row)], stream
            return [run(suite, out, options, on_row=on_row)], stream
        finally:
            if stream is not None:
                stream.close()


def _interrupted(out: Path) -> int:
    """Ctrl-C: one line saying what was kept, and exit 130 (128 + SIGINT, as a shell would)."""
    from convbench.run.rundir import RESULTS_FILE, rows_written

    machines = sorted(out.parent.glob(f"{out.name}@*"))  # --each-machine's run directories
    kept = rows_written(out) + sum(rows_written(d) for d in machines)
    where = out / RESULTS_FILE if not machines else out.parent / f"{out.name}@*" / RESULTS_FILE
    error_console().print(f"convbench: interrupted; {kept} row{'' if kept == 1 else 's'} kept "
                          f"in {where} (resume with --resume)", markup=False)
    return EXIT_INTERRUPTED


def _finish(suite: Suite, path: Path, output: Output, db: str | None,
            streamed: Any = None) -> dict[str, Any]:
    """After a suite ran: its table, report, warnings and storage; returns what --format json
    says of it."""
    from convbench.analysis.speedups import geomean_speedups
    from convbench.analysis.table import render
    from convbench.commands.history import store
    from convbench.report import build_report
    from convbench.run.rundir import noise_warning, read_results

    frame, out = read_results(path), path.parent
    render(frame, suite.reference, output.console, title=f"{suite.name}: {path}",
           reasons=output.log and not output.verbose)
    report = build_report([out], out)
    output.console.print(f"report: {escape(str(report))}")
    warning = noise_warning(out)
    if warning:
        output.console.print(f"[yellow]warning:[/] {escape(warning)}")
    if db:
        if streamed is not None and streamed.error:
            output.console.print(
                f"[yellow]warning:[/] the results database failed while the run went on "
                f"({escape(streamed.error)}); {streamed.stored} rows were stored as they came, "
                "the rest now")
        elif streamed is not None:
            output.console.print(f"{streamed.stored} rows stored as they were measured")
        store(db, out, output.console)
    return {"suite": suite.name, "reference": suite.reference, "notes": list(suite.notes),
            "directory": str(out),
            "results": str(path), "report": str(report), "warnings": [warning] if warning else [],
            "counts": _counts(frame), "geomean_speedups": geomean_speedups(frame, suite.reference),
            "frame": frame}


def _counts(frame: pd.DataFrame) -> dict[str, int]:
    from convbench.run.rundir import STATUSES

    counts = frame["status"].value_counts()
    return {status: int(counts[status]) for status in STATUSES if status in counts}


def _verdict(done: list[dict[str, Any]], output: Output) -> int:
    """The last line (with, under --quiet, the failures it counts), the JSON document and the
    job summary; the exit code."""
    import pandas as pd

    from convbench.analysis.table import comparison_markdown, failure_lines

    everything = pd.concat([suite["frame"] for suite in done])
    code = EXIT_WRONG if everything["status"].isin(FAILING).any() else EXIT_OK
    line = verdict_line(_counts(everything), code)
    if output.quiet:
        for text in failure_lines(everything):
            output.verdict.print(escape(text))
    output.verdict.print(escape(line))
    output.emit({"command": "run", "exit_code": code, "verdict": line,
                 "suites": [_document(suite) for suite in done]})
    append_step_summary("\n".join([f"## {line}", "", *(comparison_markdown(
        s["frame"], s["reference"], f"{s['suite']}: {s['results']}") for s in done)]))
    return code


def verdict_line(counts: dict[str, int], code: int) -> str:
    """'convbench run: ok (27 ok, 53 unsupported)', or 'failed' when a result is wrong."""
    listed = ", ".join(f"{n} {status}" for status, n in counts.items())
    return f"convbench run: {'ok' if code == EXIT_OK else 'failed'} ({listed})"


def _document(suite: dict[str, Any]) -> dict[str, Any]:
    """A suite's part of the JSON document: its summary, then its rows."""
    return {k: v for k, v in suite.items() if k != "frame"} | {"rows": records(suite["frame"])}
