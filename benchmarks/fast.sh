#!/usr/bin/env bash
# Measures the fast algorithms against torch's CPU convolution on this machine, side by side in
# one run, and reads the README's targets off the results:
#     bash benchmarks/fast.sh [OUT]        (default OUT: reports/bench; about ten minutes)
# A benchmark process may drop the OpenBLAS work-arounds some machines set (they halve SGEMM);
# meta.json records the BLAS kernel that ran either way.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-reports/bench}
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
bin=.venv/bin
$bin/convbench machine
# --interleave: a case's algorithms in alternation, so that a drift in the machine's speed falls
# on all alike (auto and the algorithm it runs are the same function: only alternation shows
# them level). `import convbench` keeps the libraries' idle threads from holding the cores.
# FFT is left out on ResNet-50: its transforms cost far more than a 1x1 or 3x3 kernel saves
# (the kernels suite shows where it pays).
algos=direct,im2col,winograd_f2x3,winograd_f4x3,winograd_f6x3
$bin/convbench tune resnet50 --algo "$algos" --out "$out/tune"
$bin/convbench run resnet50 --out "$out" --no-progress --interleave --algo "$algos,auto,torch"
$bin/convbench run kernels --out "$out" --no-progress --interleave
$bin/python benchmarks/fast_targets.py "$out/resnet50" "$out/kernels"
