"""`convbench compare BASE NEW`: the regression gate. Exit 1 on a regression or a newly failing
result, 0 otherwise, 2 on unreadable input or nothing in common."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from convbench.commands.args import check_output_directory
from convbench.commands.output import Output, add_output_options, append_step_summary, records

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
        "and classify each. A regression needs a ratio (of the --statistic) beyond the "
        "threshold, a significant Mann-Whitney U test on the raw samples, and, where the runs "
        "took samples from several processes, every process of NEW beyond every process of "
        "BASE. BASE and NEW are run directories (holding results.csv) or directories of them.")
    parser.add_argument("base", type=Path, metavar="BASE")
    parser.add_argument("new", type=Path, metavar="NEW")
    parser.add_argument("--threshold", type=fraction, default=0.07,
                        help="smallest change that counts, e.g. 7%% (default) or 0.07")
    parser.add_argument("--alpha", type=fraction, default=0.002,
                        help="significance level of the Mann-Whitney U test (default 0.002)")
    parser.add_argument("--normalize", choices=("none", "reference", "case"), default="case",
                        help="case (default): divide NEW's times by the median new/base ratio "
                        "of the case's algorithms, or where a case has fewer than five, by "
                        "the reference's; reference: by the suite's reference algorithm's "
                        "new/base ratio over the suite; none: raw times")
    parser.add_argument("--statistic", choices=STATISTIC_NAMES, default="min",
                        help="what is compared: the minimum of the samples (default: other "
                        "processes only add time), the 10th percentile (q10) or the median")
    parser.add_argument("--confirms", type=Path, metavar="DIR",
                        help="this comparison repeats the one whose compare.csv is in DIR: "
                        "exit 1 only for rows that regressed or newly failed in both")
    parser.add_argument("--out", type=Path, help="where compare.md, compare.html and "
                        "compare.csv go (default: NEW)")
    add_output_options(parser)


def main(args: argparse.Namespace, console: Console) -> int:
    from convbench.analysis.compare import CompareOptions, compare, warnings_for
    from convbench.run.rundir import read_runs

    output = Output.of(args, console)
    earlier = _earlier_comparison(args)
    base, new = read_runs(args.base), read_runs(args.new)
    out = args.out or args.new
    check_output_directory(out, f"--out {out}" if args.out else f"NEW {out} (where --out goes)")
    options = CompareOptions(threshold=args.threshold, alpha=args.alpha,
                             normalize=None if args.normalize == "none" else args.normalize,
                             statistic=args.statistic)
    comparison = compare(base, new, options)
    warnings = warnings_for(base, new)
    title = f"convbench compare {args.base} -> {args.new}"
    _print(output.console, comparison, options, title, warnings)
    written = _write(out, comparison, options, title, warnings)
    output.console.print("written: " + ", ".join(escape(str(path)) for path in written))
    code, lines = _decide(args.confirms, earlier, comparison)
    return _verdict(output, comparison, code, lines, warnings, written)


def _print(console: Console, comparison: Any, options: Any, title: str,
           warnings: list[str]) -> None:
    from convbench.analysis.compare_report import rich_table, summary

    console.print(rich_table(comparison, options, title))
    console.print(escape(summary(comparison)))
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")


def _write(out: Path, comparison: Any, options: Any, title: str,
           warnings: list[str]) -> tuple[Path, ...]:
    """compare.md, compare.html and compare.csv in `out`."""
    from convbench.analysis.compare_report import to_html, to_markdown

    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(to_markdown(comparison, options, title))
    (out / "compare.html").write_text(to_html(comparison, options, title, warnings))
    comparison.to_csv(out / COMPARE_CSV, index=False)
    return out / "compare.md", out / "compare.html", out / COMPARE_CSV


def _decide(confirms: Path | None, earlier: Any, comparison: Any) -> tuple[int, list[str]]:
    """The exit code and the lines that explain it: the rows that decided it, the verdict
    last."""
    from convbench.analysis.compare import EXIT_CHANGES
    from convbench.analysis.compare_report import change_counts

    counts = change_counts(comparison)
    if earlier is not None:
        return _confirm(confirms, earlier, comparison, counts)
    deciding = comparison[comparison["change"].isin(EXIT_CHANGES)]
    if deciding.empty:
        return EXIT_OK, [f"convbench compare: no regression ({counts})"]
    lines = [f"{row.change}: {row.case} / {row.algo} [{row.backend}]{_ratio(row.ratio)}"
             for row in deciding.itertuples()]
    return EXIT_REGRESSION, [*lines, "convbench compare: regression or newly failing result "
                                     f"({counts})"]


def _ratio(ratio: float) -> str:
    return "" if math.isnan(ratio) else f" new/base {ratio:.3f}"  # NaN: a newly failing row


def _verdict(output: Output, comparison: Any, code: int, lines: list[str],
             warnings: list[str], written: tuple[Path, ...]) -> int:
    """The lines of the decision, the JSON document and the job summary; the exit code."""
    from convbench.analysis.compare_report import decision_markdown

    for line in lines[:-1]:
        output.verdict.print(escape(line))
    output.verdict.print(escape(lines[-1]), style="bold red" if code else None)
    output.emit({"command": "compare", "exit_code": code, "verdict": lines[-1],
                 "counts": {k: int(v) for k, v in comparison["change"].value_counts().items()},
                 "machine_factors": _factors(comparison), "warnings": warnings,
                 "written": [str(p) for p in written], "rows": records(comparison)})
    append_step_summary(decision_markdown(comparison, lines[-1], warnings))
    return code


FACTOR_KEYS = {"reference": ("suite", "backend", "direction"),
               "case": ("suite", "case", "backend", "direction")}


def _factors(comparison: Any) -> list[dict[str, Any]]:
    """The machine (or case) factors of a normalized comparison, as JSON-ready records."""
    names = FACTOR_KEYS.get(comparison.attrs.get("normalize") or "", ())
    factors = comparison.attrs.get("machine_factors") or {}
    return [dict(zip(names, group)) | {"factor": factor} for group, factor in factors.items()]


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
    return _read_comparison(args.confirms / COMPARE_CSV)


def _read_comparison(path: Path) -> Any:
    """A compare.csv, as text; ValueError naming it when it is not one."""
    import pandas as pd

    from convbench.analysis.compare import KEY

    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except (OSError, ValueError) as error:  # pandas' parse errors and bad bytes: ValueErrors
        raise ValueError(f"--confirms: {path}: not a comparison table ({error})") from None
    missing = [c for c in (*KEY, "change") if c not in table.columns]
    if missing:
        raise ValueError(f"--confirms: {path}: not a comparison table (no {missing[0]!r} "
                         "column)")
    return table


def _confirm(earlier_dir: Path | None, earlier: Any, comparison: Any, counts: str
             ) -> tuple[int, list[str]]:
    """Exit 1 only for the rows that regressed (or newly failed) here and in the earlier
    comparison."""
    from convbench.analysis.compare import confirmed

    both = confirmed(earlier, comparison)
    if both.empty:
        return EXIT_OK, [f"convbench compare: not confirmed: no row that failed in "
                         f"{earlier_dir} failed again ({counts})"]
    lines = [f"confirmed: {row.case} / {row.algo} {row.change} in both comparisons"
             for row in both.itertuples()]
    return EXIT_REGRESSION, [*lines, f"convbench compare: confirmed: {len(both)} failed in both "
                                     f"comparisons ({counts})"]
