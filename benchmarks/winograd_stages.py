"""Winograd's numpy path, stage by stage, and against torch's CPU convolution (oneDNN).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/winograd_stages.py \\
        n8c64h56k64r3p1 n8c128h28k128r3p1 n8c256h14k256r3p1 n8c512h7k512r3p1

Options: --threads T (2), --rounds R (interleaved rounds, 30), --algos a,b (f2x3,f4x3,f6x3),
--gap-ms G (pause before each timed call, 20).
Stages (median ms): filter (the filter transform), input (pad, gather, input transform), gemm
(the alpha^2 channel GEMMs), otrans (output transform), scatter (permute into NCHW, crop, bias);
the sum is next to the whole call. Then the whole calls with their filters prepared (the filter
stage left out), interleaved with torch round by round: min and median ms. Last, two floors
that no faster transform code can go below: Winograd's filter + gemm stages (memory and
OpenBLAS's batched GEMMs; training-like runs time both), and the direct convolution's FLOPs at
this machine's SGEMM rate (`convbench machine`), the bound of im2col and any GEMM-based method.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # before numpy loads OpenBLAS
    os.environ.pop(_var, None)

import convbench  # noqa: E402, F401  (first: it shortens idle threads' spinning before numpy loads)
import numpy as np  # noqa: E402
import scipy.fft  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from convbench.problems import descriptor  # noqa: E402

from convbench.measure import machine

from convbench import oracle

from convbench.algorithms import registry
from convbench.algorithms.conv import winograd as W  # noqa: E402
from convbench.algorithms.windows import add_bias  # noqa: E402
from convbench.measure.environment import keep_freed_memory  # noqa: E402

ALPHA = {"winograd_f2x3": 4, "winograd_f4x3": 6, "winograd_f6x3": 8}


def median_ms(fn, repeats: int = 15) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def stages(p, x, w, bias, alpha) -> dict[str, float]:
    mh, mw, th, tw = W._tiles(p, alpha)
    at, _, _ = W.transforms_like(alpha, p.r, p.s, x)
    u = W.filter_transform(p, w, alpha)
    v = W.input_transform(p, x, alpha)
    m = np.matmul(u, v)
    y = at @ m.reshape(alpha * alpha, -1)

    def scatter():
        z = y.reshape(mh, mw, p.k, p.n, th, tw).transpose(3, 2, 4, 0, 5, 1)
        z = z.reshape(p.n, p.k, th * mh, tw * mw)
        return add_bias(np.ascontiguousarray(z[:, :, : p.out_h, : p.out_w]), bias)

    return {"filter": median_ms(lambda: W.filter_transform(p, w, alpha)),
            "input": median_ms(lambda: W.input_transform(p, x, alpha)),
            "gemm": median_ms(lambda: np.matmul(u, v)),
            "otrans": median_ms(lambda: at @ m.reshape(alpha * alpha, -1)),
            "scatter": median_ms(scatter)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("descriptors", nargs="+")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--algos", default="f2x3,f4x3,f6x3")
    parser.add_argument("--gap-ms", type=float, default=20.0,
                        help="pause before each timed call, so that the other library's idle "
                        "threads (OpenMP's and OpenBLAS's spin-waits) have gone to sleep")
    args = parser.parse_args()
    keep_freed_memory()
    torch.set_num_threads(args.threads)
    scipy.fft.set_workers(args.threads)
    names = [f"winograd_{a}" for a in args.algos.split(",")]
    sgemm = machine.peaks(args.threads)["sgemm_gflops"]
    with threadpool_limits(args.threads):
        for desc in args.descriptors:
            p = descriptor.parse(desc)
            x, w, bias = oracle.make_inputs(p).arrays
            tx, tw_ = torch.from_numpy(x), torch.from_numpy(w)
            tb = None if bias is None else torch.from_numpy(bias)
            floors: dict[str, float] = {}
            calls = {"torch": lambda: torch.nn.functional.conv2d(
                tx, tw_, tb, stride=p.stride, padding=p.padding, groups=p.groups)}
            for name in names:
                algo = registry.get("conv2d", name)
                state = algo.prepare(p, x, w, bias)  # the filter transform, outside the timing
                calls[name] = (lambda a=algo, s=state: a.fn(p, x, w, bias, prepared=s))
                s = stages(p, x, w, bias, ALPHA[name])
                floors[name] = s["filter"] + s["gemm"]
                print(f"{desc} {name:14s} " + " ".join(f"{k}={v:.2f}" for k, v in s.items())
                      + f" sum={sum(s.values()):.2f} ms")
            times: dict[str, list[float]] = {k: [] for k in calls}
            with torch.no_grad():
                for fn in calls.values():
                    fn()
                for _ in range(args.rounds):  # interleaved: a disturbance hits all alike
                    for k, fn in calls.items():
                        time.sleep(args.gap_ms / 1e3)
                        t = time.perf_counter()
                        fn()
                        times[k].append(time.perf_counter() - t)
            ref = statistics.median(times["torch"])
            for k, ts in times.items():
                med = statistics.median(ts)
                print(f"{desc} {k:14s} min={min(ts) * 1e3:6.2f} median={med * 1e3:6.2f} ms "
                      f"({med / ref:.2f}x torch)")
            bound = 2 * p.macs / (sgemm * 1e9) * 1e3
            print(f"{desc} floors: " + " ".join(f"{k} filter+gemm={v:.2f}" for k, v in floors.items())
                  + f"; direct FLOPs at SGEMM's {sgemm:.0f} GFLOP/s={bound:.2f} ms"
                  + f"; torch median={ref * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
