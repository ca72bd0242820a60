"""im2col's NCHW compiled path (convbench.algorithms.conv.im2col._nchw) against what it replaced
and against its own settings, side by side in one process, on ResNet-50's 3x3 layers and its
7x7 stem (NCHW, N=8, fp32, 2 threads).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/im2col_nchw.py

Per layer, timed in interleaved rounds (one sample of each closure per round, the order
rotated):
- `nchw`: im2col as it runs (columns straight from NCHW in the weights' order, chunks of
  PLANAR_CHUNK_PIXELS outputs, rows split into phases from PHASED_MIN_WIDTH outputs wide);
- `images=1`, `images=2`, `images=4`, `images=all`: the same with that many images a chunk;
- `phased` / `strided` (stride 2 only): every row split into phases first, or none;
- `detour`: the path it replaced at a stride, composed from the layout kernels that remain: a
  blocked transpose to channels last, the (N*OH*OW, R*S*C) column matrix, one GEMM with the
  reordered weights, the transpose back;
- `unfold`: the array version, which NCHW layers at stride 1 took before (numpy's unfold, one
  image at a time from 512 outputs an image, its GEMMs);
- `torch`: torch.nn.functional.conv2d (oneDNN).
With --pointwise, also the 1x1 layers that take the compiled path (the strided ones): `nchw`
(the subsample made by a compiled kernel, then per-image GEMMs; on small images every image's
subsample gathered into one column matrix, one GEMM, the result put back into NCHW) against
`array` (what they took before: numpy's subsample and per-image GEMMs, or on small images
numpy's unfold and one GEMM) and `torch`.
With --bounds, in place of those, im2col's stages on each 3x3 layer and the stem, timed
alone in the same rounds: `columns` (the column matrix of every chunk, into the path's reused
buffer), `gemm` (the chunks' GEMMs on columns built beforehand), `gemm_one` (one GEMM over
every image's columns), `to_nchw` (the chunks' results put back into NCHW), `write` (the
column matrix's bytes written once by torch's multithreaded fill) and `read` (the input read
once, torch's multithreaded sum): what a column matrix costs at the least, beside `nchw` and
`torch`; and the bound of any method that builds a column matrix and multiplies it: (the
faster GEMM + read + write) / torch.
Reported: medians in ms, each over torch, and the noise (IQR / median, median and max over
the layer's closures). The GEMM engine is the calibration's pick (made now where none is
cached, and not cached), or --engine.

Options: --quick, --threads T, --layers SUBSTRING, --engine numpy|torch, --pointwise,
--bounds, --csv PATH.
"""

from __future__ import annotations

import csv
import dataclasses
import statistics
import sys

import auto_quality as aq  # noqa: E402  (the layers, rounds and options; sets the env)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from convbench import oracle  # noqa: E402
from convbench.algorithms.conv import im2col, layout_kernels  # noqa: E402
from convbench.backends import compiled, gemm  # noqa: E402
from convbench.backends.xp import matmul_into  # noqa: E402
from convbench.measure.environment import keep_freed_memory  # noqa: E402
from convbench.measure.timing import measure_interleaved  # noqa: E402
from convbench.run.processes import pinned_threads  # noqa: E402


def detour(p: object, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The NCHW path before: through channels last and back."""
    threads = compiled.threads()
    xn = layout_kernels.channels_last(x, threads)
    weights = layout_kernels.filters(p, w, threads)
    rows = np.empty((p.n * p.out_h * p.out_w, p.k), x.dtype)
    matmul_into(layout_kernels.columns(p, xn, threads), weights, rows)
    return layout_kernels.channels_first(rows.reshape(p.n, p.out_h, p.out_w, p.k), threads)


def with_constants(fn, module, **values):
    """fn run with `module`'s constants set to `values`, restored after."""
    def run():
        before = {name: getattr(module, name) for name in values}
        for name, value in values.items():
            setattr(module, name, value)
        try:
            return fn()
        finally:
            for name, value in before.items():
                setattr(module, name, value)
    return run


def array_path(p: object, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """What an NCHW layer takes without the compiled kernels (a strided 1x1: the subsample,
    then per-image GEMMs; a 1x1 on small images: numpy's unfold and one GEMM)."""
    if im2col._route(p) == "per_image":
        return im2col._pointwise(p, x, w).reshape(p.output_shape)
    return im2col._unfolded(p, x, w).reshape(p.output_shape)


def pointwise_closures(p: object) -> dict[str, object]:
    """A 1x1 layer: im2col as it runs, its array path, torch."""
    x, w, _ = oracle.make_inputs(p).arrays
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    return {"nchw": lambda: im2col.conv2d_im2col(p, x, w, None),
            "array": lambda: array_path(p, x, w),
            "torch": lambda: torch.nn.functional.conv2d(tx, tw, stride=p.stride)}


def closures(p: object) -> dict[str, object]:
    x, w, _ = oracle.make_inputs(p).arrays
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    run = lambda: im2col.conv2d_im2col(p, x, w, None)  # noqa: E731
    pixels = p.out_h * p.out_w
    fns = {"nchw": run}
    for images in sorted({min(i, p.n) for i in (1, 2, 4, p.n)}):
        fns[f"images={images if images < p.n else 'all'}"] = with_constants(
            run, im2col, PLANAR_CHUNK_PIXELS=images * pixels)
    if p.stride[1] > 1:
        fns["phased"] = with_constants(run, layout_kernels, PHASED_MIN_WIDTH=0)
        fns["strided"] = with_constants(run, layout_kernels, PHASED_MIN_WIDTH=1 << 30)
    fns["detour"] = lambda: detour(p, x, w)
    fns["unfold"] = lambda: im2col._unfolded(p, x, w).reshape(p.output_shape)
    fns["torch"] = lambda: torch.nn.functional.conv2d(tx, tw, stride=p.stride,
                                                      padding=p.padding)
    return fns


def bound_closures(p: object) -> dict[str, object]:
    """im2col's stages alone on a layer that builds a column matrix (_nchw), and the least
    time writing that matrix takes; `nchw` and `torch` beside them."""
    x, w, _ = oracle.make_inputs(p).arrays
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    threads, step, pixels = compiled.threads(), im2col._nchw_images(p), p.out_h * p.out_w
    width, weights = p.c * p.r * p.s, np.ascontiguousarray(w).reshape(p.k, -1)
    chunks = [(n0, dataclasses.replace(p, n=min(p.n, n0 + step) - n0))
              for n0 in range(0, p.n, step)]  # (first image, the chunk's problem)
    buffer = np.empty((width, step * pixels), x.dtype)  # the path's one reused buffer
    built = [layout_kernels.planar_columns(part, x[n0 : n0 + part.n],
                                           np.empty((width, part.n * pixels), x.dtype), threads)
             for n0, part in chunks]
    every = np.concatenate(built, axis=1)  # (C*R*S, N*OH*OW)
    products = [np.empty((p.k, b.shape[1]), x.dtype) for b in built]
    one = np.empty((p.k, every.shape[1]), x.dtype)
    y = np.empty((p.n, p.k, pixels), x.dtype)
    written = torch.from_numpy(buffer)

    def columns() -> None:
        for (n0, part), b in zip(chunks, built, strict=True):
            layout_kernels.planar_columns(part, x[n0 : n0 + part.n],
                                          buffer[:, : b.shape[1]], threads)

    def gemms() -> None:
        for b, product in zip(built, products, strict=True):
            matmul_into(weights, b, product)

    def to_nchw() -> None:
        for (n0, part), product in zip(chunks, products, strict=True):
            layout_kernels.swap_runs(product.reshape(p.k, part.n, pixels),
                                     y[n0 : n0 + part.n], threads)

    def write() -> None:
        for b in built:
            written[:, : b.shape[1]].zero_()

    def read() -> None:
        tx.sum()

    fns = {"nchw": lambda: im2col.conv2d_im2col(p, x, w, None), "columns": columns,
           "gemm": gemms, "gemm_one": lambda: matmul_into(weights, every, one)}
    if step > 1:
        fns["to_nchw"] = to_nchw
    fns["write"], fns["read"] = write, read
    fns["torch"] = lambda: torch.nn.functional.conv2d(tx, tw, stride=p.stride,
                                                      padding=p.padding)
    return fns


def bound(row: dict[str, object]) -> float:
    """(the faster GEMM + reading the input + writing the columns) / torch, from a layer's row
    of medians."""
    least = min(row["gemm_ms"], row["gemm_one_ms"]) + row["read_ms"] + row["write_ms"]
    return least / row["torch_ms"]


def checked(p: object, fns: dict[str, object]) -> dict[str, object]:
    """`fns`, each checked against fns["torch"] first."""
    reference = fns["torch"]().numpy()
    for name, fn in fns.items():  # every contender computes the convolution
        got = np.asarray(fn())
        scale = float(np.abs(reference).max())
        if np.abs(got - reference).max() > 1e-4 * scale:
            raise AssertionError(f"{p}: {name} differs from torch")
    return fns


def timed(name: str, p: object, fns: dict[str, object], policy: object) -> dict[str, object]:
    """`fns` timed in interleaved rounds: their medians printed, each over torch's, with the
    noise; the layer's row (medians in ms)."""
    with torch.no_grad():
        found = dict(zip(fns, measure_interleaved(list(fns.values()), policy)))
    medians = {n: m.median_s for n, m in found.items()}
    noise = [m.iqr_s / m.median_s for m in found.values()]
    torch_s = medians["torch"]
    print(f"{name} ({p}): " + " ".join(
        f"{n}={t * 1e3:.2f} ({t / torch_s:.2f})" for n, t in medians.items())
        + f" ms (/ torch); IQR/median median {statistics.median(noise):.3f}, max "
        f"{max(noise):.3f}", flush=True)
    return {"layer": name, "problem": str(p), **{f"{n}_ms": t * 1e3 for n, t in medians.items()}}


def write_rows(path: object, rows: list[dict[str, object]]) -> None:
    names = sorted({k for row in rows for k in row})
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=names)
        writer.writeheader()
        writer.writerows(rows)


def main() -> int:
    parser = aq.arguments()
    parser.add_argument("--engine", choices=gemm.ENGINES,
                        help="the GEMM engine (default: the calibration's pick)")
    parser.add_argument("--bounds", action="store_true",
                        help="im2col's stages alone on the 3x3 layers and the stem, and the "
                        "bound of a column-matrix method: (GEMM + read + write) / torch")
    parser.add_argument("--pointwise", action="store_true",
                        help="also the 1x1 layers that take the compiled path (the strided "
                        "ones), against their array path")
    args = parser.parse_args()
    keep_freed_memory()
    policy = aq.POLICIES["quick" if args.quick else "full"]
    print(f"# nchw, N={args.batch}, {args.threads} threads; interleaved", flush=True)
    rows = []
    with pinned_threads(args.threads):
        aq.models(args.threads, args.engine)  # sets the engine; calibrates if none is cached
        for name, p in aq.layers(args.batch, args.layers, "nchw"):
            if (p.r, p.s) != (1, 1) and args.bounds:  # the stages are parts: not checked
                fns = bound_closures(p)
                checked(p, {name: fns[name] for name in ("nchw", "torch")})
            elif (p.r, p.s) != (1, 1):
                fns = checked(p, closures(p))
            elif args.pointwise and im2col.compiled_path(p):
                fns = checked(p, pointwise_closures(p))
            else:
                continue
            rows.append(timed(name, p, fns, policy))
            if args.bounds:
                rows[-1]["bound"] = bound(rows[-1])
                print(f"  a column-matrix method's bound here: (the faster GEMM + reading the "
                      f"input + writing the columns) / torch = {rows[-1]['bound']:.2f}",
                      flush=True)
    if args.csv:
        write_rows(args.csv, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
