#!/usr/bin/env bash
# The performance gate of .ci/run: the smoke suite of the code as it is against the smoke suite of
# the accepted code (the commit named in benchmarks/baseline/commit), both run here, on this
# machine, one after the other, with the settings benchmarks/false_alarms.py measured. Timings
# from another machine say nothing about this one: a CI runner whose FFT library is 13% slower
# against torch than ours failed a comparison with numbers recorded here, though no line of
# convbench's FFT had changed. So the baseline is code, and each run measures it afresh.
#
# Exits 1 on a confirmed regression or newly wrong result, and at once on a wrong result (or an
# error) in the new run; 2 when it cannot gate: bad arguments, the baseline commit missing from
# the clone, or the baseline's own run failing. The comparisons and run logs are kept in
# reports/gate/.
#
# The runs and the comparison use convbench's defaults, which are this gate's recipe: interleaved,
# one thread, samples from 3 processes; compare divides by each case's median new/base ratio
# (--normalize case), compares minimums, and needs a change beyond the spread between processes
# (README, "Catching regressions"). A failing comparison is confirmed by a second pair of runs,
# in the other order, and the gate fails only on a row that regressed (or newly failed) in both
# comparisons: a real regression shows in the same rows again, a false alarm seldom does.
#
#   benchmarks/gate.sh               # the baseline commit against the working tree
#   benchmarks/gate.sh --base REF    # any commit, branch or tag against the working tree
#   benchmarks/gate.sh --refresh     # accept HEAD: write its commit to benchmarks/baseline/commit
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
python=$root/.venv/bin/python
baseline_file=benchmarks/baseline/commit

[ -x "$python" ] || { echo "gate: no $python: make setup makes the environment" >&2; exit 2; }
usage() { echo "usage: benchmarks/gate.sh [--base REF | --refresh]" >&2; exit 2; }

base=""
case "${1:-}" in
    "") base=$(grep -v '^#' "$baseline_file" 2>/dev/null | head -n 1 | tr -d '[:space:]') ;;
    --base) [ $# -eq 2 ] || usage; base=$2 ;;
    --refresh)
        [ $# -eq 1 ] || usage
        head=$(git rev-parse HEAD) || exit 2
        if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
            echo "gate: the working tree differs from HEAD; commit first, so that the baseline" \
                 "names the code that was measured" >&2
            exit 2
        fi
        { echo "# The commit whose smoke-suite speed the CI gate accepts (benchmarks/gate.sh --refresh)"
          echo "$head"; } > "$baseline_file"
        echo "gate: the baseline is now $head ($(git log -1 --format=%s "$head" | cut -c1-60));" \
             "commit $baseline_file"
        exit 0 ;;
    *) usage ;;
esac
if [ -z "$base" ]; then
    echo "gate: no baseline commit: $baseline_file is missing or empty (benchmarks/gate.sh" \
         "--refresh writes it)" >&2
    exit 2
fi
if ! commit=$(git rev-parse --verify --quiet "$base^{commit}"); then
    hint=""
    [ "$(git rev-parse --is-shallow-repository 2>/dev/null)" = true ] \
        && hint=" This clone is shallow: git fetch --unshallow brings the history."
    echo "gate: the baseline commit '$base' is not in this clone.$hint" >&2
    exit 2
fi

work=$(mktemp -d) || exit 2
cleanup() {
    rm -rf reports/gate && mkdir -p reports/gate
    cp -r "$work"/new-* "$work"/base-* reports/gate/ 2>/dev/null
    git worktree remove --force "$work/base" >/dev/null 2>&1
    git worktree prune
    rm -rf "$work"
}
trap cleanup EXIT

# The baseline's code, installed (without dependencies: it uses this environment's) into a
# directory of its own, the way pip lays out any install of it.
git worktree add --detach --quiet "$work/base" "$commit" || exit 2
# Built with this environment's setuptools, else (a setuptools too old) in pip's own build
# environment, which needs the package index.
install_base() {
    "$python" -m pip install --quiet --no-deps "$@" --target "$work/site" "$work/base" \
        >> "$work/install.log" 2>&1
}
if ! install_base --no-build-isolation --no-index && ! install_base; then
    cat "$work/install.log"
    echo "gate: the baseline commit $commit could not be installed" >&2
    exit 2
fi
# -P: no current directory on sys.path, so the source tree's own convbench/ is never imported
# in place of the installed one.
located=$(cd "$work/base" && PYTHONPATH="$work/site" "$python" -P -c \
    'import importlib; print(importlib.import_module("convbench.algorithms").__file__)')
case "$located" in
    "$work/site/"*) ;;
    *) echo "gate: the baseline run would import convbench from $located, not $work/site" >&2
       exit 2 ;;
esac

# Both runs in the same environment: as `make report`, without the OpenBLAS work-arounds for
# old builds (they slow a current numpy); the idle-thread settings of `import convbench`, which
# an older baseline may not make itself; and an empty tuning cache, so that `auto` follows its
# rule on both sides, whatever this machine's `convbench tune` stored.
export OPENBLAS_THREAD_TIMEOUT=20 GOMP_SPINCOUNT=10000 CONVBENCH_CACHE="$work/cache"
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE

# base_convbench ARGS...: the baseline's convbench, from its worktree (so that its meta.json names
# that commit).
base_convbench() {
    (cd "$work/base" && PYTHONPATH="$work/site" "$python" -P -c \
        'import sys; from convbench.cli import main; sys.exit(main())' "$@")
}

# The recipe, spelled out for both sides: `convbench run`'s defaults now (interleaved, one
# thread, the samples from several processes), which a baseline from before they were the
# defaults must be told. One that cannot take its samples from several processes is measured
# from one, and so is the new code then: both sides alike.
recipe=(--interleave --threads 1 --budget 0.2)
base_recipe=("${recipe[@]}")
if base_convbench run --help 2>/dev/null | grep -q -- '--processes'; then
    recipe+=(--processes 3)
    base_recipe+=(--processes 3)
else
    recipe+=(--processes 1)
fi

# run_smoke WHICH OUT: WHICH is base (the baseline) or new (the working tree). Exits as the gate
# must when the run fails: 2 when the baseline cannot be measured, 1 when the new code gives a
# wrong result (convbench run's 1).
run_smoke() {
    local which=$1 out=$2 rc=0
    local run=(run smoke "${recipe[@]}" --no-progress --out "$out")
    [ "$which" = base ] && run=(run smoke "${base_recipe[@]}" --no-progress --out "$out")
    mkdir -p "$out"
    if [ "$which" = base ]; then
        base_convbench "${run[@]}"
    else
        .venv/bin/convbench "${run[@]}"
    fi > "$out/run.log" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] && return 0
    cat "$out/run.log"
    echo "gate: the $which run failed (exit $rc)" >&2
    if [ "$which" = new ] && [ "$rc" -eq 1 ]; then exit 1; fi
    exit 2
}

compare() {  # compare BASE_OUT NEW_OUT [--confirms EARLIER_NEW_OUT]: compare's defaults
    .venv/bin/convbench compare "$1" "$2" --out "$2" "${@:3}"
}

echo "gate: baseline $commit ($(git log -1 --format=%s "$commit" | cut -c1-60)) against the" \
     "working tree at $(git rev-parse --short HEAD)"
run_smoke base "$work/base-1"
run_smoke new "$work/new-1"
compare "$work/base-1" "$work/new-1"
status=$?
if [ "$status" -eq 1 ]; then
    echo "gate: the comparison failed; confirming with a second pair of runs" >&2
    run_smoke new "$work/new-2"
    run_smoke base "$work/base-2"
    compare "$work/base-2" "$work/new-2" --confirms "$work/new-1"
    status=$?
fi
exit "$status"
