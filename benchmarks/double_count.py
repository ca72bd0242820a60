"""How often the tolerance catches a single product counted twice, by tolerance and sum length.

    .venv/bin/python benchmarks/double_count.py [--products 50] [--channels 64,512,2048,8192]

For each channel count C (a 3x3 kernel with padding 1 on a 6x6 float32 input, K=4: L = 9 C
products per output), it draws `--products` random (output element, term of its sum) pairs
(seed 0), adds that one product x * w once more to the float32 image of the oracle's output,
and checks the result with each tolerance model the registry declares: the direct methods'
(factor 1, no floor, each element against its own M_i) and the spread ones (FFT, Winograd's
4x4, 6x6 and 8x8 tiles: a floor in eps, against the output's largest M). It prints, per model
and L, how many of the products were caught.

Why not all: the doubled product |x w| must exceed tolerance * M. With the element's own M_i
(~0.64 L for standard normal inputs) that threshold grows like eps L^1.5; against the output's
largest M and a floor it is larger still. Products of two normals below it go unseen, and their
share grows with L. tests/test_oracle_check.py pins the counts measured at L=4608 and 18432.
"""

from __future__ import annotations

import argparse

import numpy as np

from convbench import oracle
from convbench.algorithms import registry
from convbench.problems import ConvProblem

# The tolerance models, each by an algorithm that declares it.
MODELS = {"direct": "direct", "fft": "fft", "F(2,3) 4x4": "winograd_f2x3",
          "F(4,3) 6x6": "winograd_f4x3", "F(6,3) 8x8": "winograd_f6x3"}


def problem(channels: int) -> ConvProblem:
    return ConvProblem(1, channels, 6, 6, 4, 3, 3, padding=1)


def doubled_products(p: ConvProblem, inputs: oracle.Inputs, count: int, seed: int = 0
                     ) -> list[tuple[tuple[int, ...], float]]:
    """`count` random (output index, product) pairs, each product a term of that output's sum
    (its input pixel inside the image, not in the padding)."""
    rng = np.random.default_rng(seed)
    (ph, pw), found = p.padding, []
    while len(found) < count:
        k, oh, ow = rng.integers(p.k), rng.integers(p.out_h), rng.integers(p.out_w)
        c, r, s = rng.integers(p.c), rng.integers(p.r), rng.integers(p.s)
        ih, iw = oh + r - ph, ow + s - pw
        if 0 <= ih < p.h and 0 <= iw < p.w:
            product = float(inputs.x[0, c, ih, iw]) * float(inputs.w[k, c, r, s])
            found.append(((0, int(k), int(oh), int(ow)), product))
    return found


def caught(p: ConvProblem, algorithm_name: str, count: int, seed: int = 0) -> int:
    """How many of `count` single doubled products the algorithm's tolerance model rejects."""
    algorithm = registry.get("conv2d", algorithm_name)
    inputs = oracle.make_inputs(p, seed=seed)
    reference = oracle.reference(p, inputs)
    exact = reference.y.astype(np.float32)
    assert oracle.check_algorithm(p, exact, reference, algorithm).ok  # rounding alone passes
    found = 0
    for index, product in doubled_products(p, inputs, count, seed):
        y = exact.copy()
        y[index] += np.float32(product)
        found += not oracle.check_algorithm(p, y, reference, algorithm).ok
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=50)
    parser.add_argument("--channels", default="64,512,2048,8192")
    args = parser.parse_args()
    channels = [int(c) for c in args.channels.split(",")]
    print(f"caught, of {args.products} single products counted twice (float32, 3x3, 6x6, K=4)")
    print(f"{'tolerance model':<14}" + "".join(f"{f'L={problem(c).reduction_length}':>10}"
                                               for c in channels))
    for label, name in MODELS.items():
        counts = [caught(problem(c), name, args.products) for c in channels]
        print(f"{label:<14}" + "".join(f"{n:>10}" for n in counts))


if __name__ == "__main__":
    main()
