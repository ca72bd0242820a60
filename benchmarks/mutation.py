"""Mutation testing of the code that decides whether a result is right (README, "Mutation testing").

    .venv/bin/python benchmarks/mutation.py [--max-children 2] [--survivors FILE] [--again]

mutmut (3.x; `[tool.mutmut]` in pyproject.toml names the files and the tests) copies convbench
into mutants/, makes small changes to it one at a time (a `<` for a `<=`, a constant off by
one, an argument dropped...) and runs the tests that reach the changed function; a change that
no test notices "survives". This script runs mutmut on the functions of SCOPE only: the oracle's
check and tolerance, the numerical paths of direct, im2col, Winograd and FFT (not their cost and
workspace models, which rank and predict and do not decide a result), the results file's repair
and resume reading, and compare's decision. It prints the counts and every survivor's diff.
Survivors of code that runs only at import are run again in a fresh process (recheck). After
adding tests, `--again` runs only the mutants that were not killed.

Not part of `make test`: a full run takes tens of minutes on two cores.

mutmut leaves a decorated function alone, because its copies would run the decorator again.
Here the decorators are `@register(...)`, which would register each copy under the algorithm's
name, and `@functools.cache`; the copies need neither (only the trampoline that dispatches to
them is registered or cached), so this script lets mutmut mutate those functions and strips the
decorators from the copies. That reaches `conv2d_direct`, `conv2d_im2col` and the Winograd
matrices, which plain mutmut skips.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTMUT_VERSION = "3.8.1"  # the internals patched below are this version's

# module -> the functions whose mutants are run (fnmatch patterns of mutmut's names).
SCOPE: dict[str, tuple[str, ...]] = {
    "convbench.oracle.core": ("*",),
    "convbench.algorithms.conv.direct": ("conv2d_direct",),
    "convbench.algorithms.conv.im2col": ("is_pointwise", "is_subsampled_pointwise", "_pointwise",
                                         "unfold", "_unfolded", "conv2d_im2col"),
    "convbench.algorithms.conv.winograd": (
        "matrices", "axis_transforms", "kron_transforms", "_tiles", "_on_device",
        "transforms_like", "axis_transforms_like", "_chunk_channels", "_padded", "_tile_view",
        "input_transform", "filter_transform", "winograd", "_checks"),
    "convbench.algorithms.conv.fft": ("fft_shape", "zero_extended", "filter_transform",
                                      "strided_crop", "fft"),
    "convbench.run.rundir": (
        "_repair", "_check_header", "_append_synced", "ResultsFile*", "_write_row",
        "_samples_record", "write_meta", "read_results", "_check_rows", "_completed",
        "_checked", "rows_written", "sample_key", "read_samples"),
    "convbench.analysis.compare": (
        "_rows", "_samples", "mann_whitney_p", "smallest_p", "machine_factors", "case_factors",
        "_suite_group", "_case_group", "_ratio", "_selectors", "_ok_keys", "_timed_in_both",
        "_keys", "_timed_samples", "_classify_timed", "_classify_pair", "compare", "_ordered",
        "gate_failed", "confirmed"),
}


def mutant_patterns() -> list[str]:
    """mutmut's names: module.x_function__mutmut_N, module.xǁClassǁmethod__mutmut_N."""
    patterns = []
    for module, functions in SCOPE.items():
        for function in functions:
            if function == "*":
                patterns.append(f"{module}.*")
            elif function.endswith("*"):  # a class's methods
                patterns.append(f"{module}.xǁ{function[:-1]}ǁ*__mutmut_*")
            else:
                patterns.append(f"{module}.x_{function}__mutmut_*")
    return patterns


def _is_allowed_decorator(decorator) -> bool:
    import libcst as cst

    expression = decorator.decorator
    if isinstance(expression, cst.Call):
        expression = expression.func
    if isinstance(expression, cst.Attribute):  # functools.cache
        return expression.attr.value == "cache"
    return isinstance(expression, cst.Name) and expression.value in ("register", "cache")


def allow_registered_functions() -> None:
    """Let mutmut mutate functions decorated with register(...) or functools.cache: the
    trampoline keeps the decorators, the original's copy and the mutants lose them."""
    import libcst as cst
    from mutmut.mutation import file_mutation

    skip = file_mutation.MutationVisitor._skip_node_and_children

    def skip_unless_registered(self, node):
        if (isinstance(node, cst.FunctionDef) and node.decorators
                and all(_is_allowed_decorator(d) for d in node.decorators)):
            return skip(self, node.with_changes(decorators=[]))
        return skip(self, node)

    arrange = file_mutation.function_trampoline_arrangement

    def arrange_undecorated_copies(function, mutants, class_name):
        declarations, nodes, assignments, names = arrange(function, mutants, class_name)
        if function.decorators and all(_is_allowed_decorator(d) for d in function.decorators):
            nodes = [nodes[0], *(n.with_changes(decorators=[]) for n in nodes[1:])]
        return declarations, nodes, assignments, names

    file_mutation.MutationVisitor._skip_node_and_children = skip_unless_registered
    file_mutation.function_trampoline_arrangement = arrange_undecorated_copies


def run_mutmut(max_children: int, names: list[str] | None = None) -> None:
    import mutmut
    from mutmut.__main__ import cli

    if mutmut.__version__ != MUTMUT_VERSION:
        sys.exit(f"benchmarks/mutation.py patches mutmut {MUTMUT_VERSION}'s internals; "
                 f"found {mutmut.__version__} (pip install mutmut=={MUTMUT_VERSION})")
    allow_registered_functions()
    try:
        cli(["run", "--max-children", str(max_children), *(names or mutant_patterns())])
    except SystemExit as done:
        if done.code not in (0, None):
            raise


def results() -> dict[str, str]:
    """Every mutant of the scope and its status, from `mutmut results --all true`."""
    done = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    import fnmatch

    found = {}
    for line in done.stdout.splitlines():
        match = re.match(r"\s+(\S+): (.+)$", line)
        if match and any(fnmatch.fnmatchcase(match[1], p) for p in mutant_patterns()):
            found[match[1]] = match[2].strip()
    return found


def summary(found: dict[str, str]) -> str:
    counts: dict[str, int] = {}
    for status in found.values():
        counts[status] = counts.get(status, 0) + 1
    killed = counts.get("killed", 0) + counts.get("killed (fresh process)", 0)
    lines = [f"mutants: {len(found)}"] + [f"  {s}: {n}" for s, n in sorted(counts.items())]
    if found:
        lines.append(f"killed: {100 * killed / len(found):.1f}%")
    return "\n".join(lines)


# Functions that run only while convbench is imported (building the registry): see recheck.
IMPORT_TIME = ("convbench.algorithms.conv.winograd.x__checks",
               "convbench.oracle.core.x_register_oracle")


def recheck(names: list[str], workers: int) -> dict[str, str]:
    """The survivors of IMPORT_TIME's functions again, the whole test selection in a fresh
    python process with MUTANT_UNDER_TEST set. mutmut's workers fork from a process that
    imported convbench before any mutant was set, so there a mutant of code that runs at import
    never takes effect (and mutmut maps it to whichever test imported convbench first).
    Returns the survivors this kills, by name."""
    from concurrent.futures import ThreadPoolExecutor

    config = _config()

    def check(name: str) -> tuple[str, bool]:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "--rootdir=.", "-p", "no:randomly",
             *config["pytest_add_cli_args"], *config["pytest_add_cli_args_test_selection"]],
            cwd=ROOT / "mutants", env=os.environ | {"MUTANT_UNDER_TEST": name},
            capture_output=True, text=True, check=False)
        return name, done.returncode not in (0, 5)

    at_import = [n for n in names if n.rsplit("__mutmut_", 1)[0] in IMPORT_TIME]
    with ThreadPoolExecutor(workers) as pool:
        return {name: "killed (fresh process)" for name, killed in pool.map(check, at_import)
                if killed}


def _config() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]


def diff_of(name: str) -> str:
    done = subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--survivors", type=Path, help="write every survivor's diff here")
    parser.add_argument("--report-only", action="store_true",
                        help="summarise the last run without running mutmut again")
    parser.add_argument("--no-recheck", action="store_true",
                        help="do not run the survivors again in fresh processes")
    parser.add_argument("--again", action="store_true",
                        help="run only the mutants that were not killed last time (after adding "
                             "tests); the others keep their verdicts")
    args = parser.parse_args()
    if args.again:
        run_mutmut(args.max_children, sorted(k for k, v in results().items()
                                             if not v.startswith("killed")))
    elif not args.report_only:
        run_mutmut(args.max_children)
    found = results()
    if not args.no_recheck:
        found |= recheck(sorted(k for k, v in found.items() if v == "survived"),
                         args.max_children)
    print(summary(found))
    survivors = sorted(k for k, v in found.items() if not v.startswith("killed"))
    text = "\n".join(f"## {name} ({found[name]})\n{diff_of(name)}" for name in survivors)
    if args.survivors:
        args.survivors.write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
