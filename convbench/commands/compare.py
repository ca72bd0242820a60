"""`convbench compare BASE NEW`: the regression gate. Exit 1 on a regression or a newly failing
result, 0 otherwise, 2 on unreadable input or nothing in common."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

# The statistics `compare` knows (convbench.analysis.compare.STATISTICS; a test keeps the two
# equal). The command's modules load pandas and scipy.stats, so they are imported when it runs.
STATISTIC_NAMES = ("median", "q10", "min")

EXIT_OK, EXIT_REGRESSION = 0, 1
COMPARE_CSV = "compare.csv"


def fraction(text: str) -> float:
    """'10%' or '0.1' -> 0.1."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a fraction or a percentage: {text!r}") from None
    if not 0 < value < 10:
        raise argparse.ArgumentTypeError(f"must be positive (e.g. 10%), got {text!r}")
    return value


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "compare", help="compare two runs: regressions, improvements, new, missing, failing",
        description="Match the rows of two runs by (suite, case, algorithm, backend, direction) "
        "and classify each. A regression needs both a ratio (of medians, or of --statistic) "
        "beyond the threshold and a "
        "significant Mann-Whitney U test on the raw samples. BASE and NEW are run directories "
        "(holding results.csv) or directories of them.")
    parser.add_argument("base", type=Path, metavar="BASE")
    parser.add_argument("new", type=Path, metavar="NEW")
    parser.add_argument("--threshold", type=fraction, default=0.10,
                        help="smallest change that counts, e.g. 10%% (default) or 0.1")
    parser.add_argument("--alpha", type=fraction, default=0.002,
                        help="significance level of the Mann-Whitney U test (default 0.002)")
    parser.add_argument("--normalize", choices=("none", "reference", "case"), default="none",
                        help="reference: divide NEW's times by the suite's reference algorithm's "
                        "new/base ratio; case: by the median new/base ratio of the case's "
                        "algorithms (interleaved runs on a shared machine)")
    parser.add_argument("--statistic", choices=STATISTIC_NAMES, default="median",
                        help="what is compared: the median (default) or, on a noisy machine, "
                        "the 10th percentile (q10) or the minimum of the samples")
    parser.add_argument("--confirms", type=Path, metavar="DIR",
                        help="this comparison repeats the one whose compare.csv is in DIR: "
                        "exit 1 only for rows that regressed or newly failed in both")
    parser.add_argument("--out", type=Path, help="where compare.md and compare.html go "
                        "(default: NEW)")


def main(args: argparse.Namespace, console: Console) -> int:
    from convbench.analysis.compare import CompareOptions, compare, gate_failed, warnings_for
    from convbench.analysis.compare_report import rich_table, summary, to_html, to_markdown
    from convbench.run.rundir import read_runs

    earlier = _earlier_comparison(args)
    base, new = read_runs(args.base), read_runs(args.new)
    options = CompareOptions(threshold=args.threshold, alpha=args.alpha,
                             normalize=None if args.normalize == "none" else args.normalize,
                             statistic=args.statistic)
    comparison = compare(base, new, options)
    warnings = warnings_for(base, new)
    title = f"convbench compare {args.base} -> {args.new}"
    console.print(rich_table(comparison, options, title))
    console.print(escape(summary(comparison)))
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    out = args.out or args.new
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(to_markdown(comparison, options, title))
    (out / "compare.html").write_text(to_html(comparison, options, title, warnings))
    comparison.to_csv(out / COMPARE_CSV, index=False)
    written = (out / "compare.md", out / "compare.html", out / COMPARE_CSV)
    console.print("written: " + ", ".join(escape(str(path)) for path in written))
    if earlier is not None:
        return _confirm(console, args.confirms, earlier, comparison)
    if gate_failed(comparison):
        console.print("[bold red]regression or newly failing result[/]")
        return EXIT_REGRESSION
    return EXIT_OK


def _earlier_comparison(args: argparse.Namespace) -> Any:
    """The table of the comparison that --confirms names, read before this one writes its own
    (keys as written: no NA parsing, so a case named "NA" stays itself)."""
    if args.confirms is None:
        return None
    if not (args.confirms / COMPARE_CSV).is_file():
        raise ValueError(f"--confirms {args.confirms}: no {COMPARE_CSV} there (compare writes "
                         "one beside its report)")
    out = args.out or args.new
    if (out / COMPARE_CSV).resolve() == (args.confirms / COMPARE_CSV).resolve():
        raise ValueError(f"--confirms {args.confirms}: that is where this comparison writes; "
                         "confirm a comparison written elsewhere")
    import pandas as pd

    return pd.read_csv(args.confirms / COMPARE_CSV, dtype=str, keep_default_na=False,
                       na_filter=False)


def _confirm(console: Any, earlier_dir: Path, earlier: Any, comparison: Any) -> int:
    """Exit 1 only for the rows that regressed (or newly failed) here and in the earlier
    comparison."""
    from convbench.analysis.compare import confirmed

    both = confirmed(earlier, comparison)
    if both.empty:
        console.print(f"not confirmed: no row that failed in {escape(str(earlier_dir))} failed "
                      "again")
        return EXIT_OK
    for row in both.itertuples():
        console.print(f"[bold red]confirmed:[/] {escape(f'{row.case} / {row.algo}')} {row.change}"
                      f" in both comparisons")
    return EXIT_REGRESSION
