"""FFT convolution at every rank: the forward pass and both backward passes (bwd_data as the
forward on the flipped kernel, bwd_weight as a correlation by FFT) of rank 2 and 3 natively,
rank 1 and per-side padding through lowering, in channels-first and channels-last memory,
checked against the float64 oracle with the tolerance fft declares; its filter transform, and
its workspace models against what numpy allocates."""

from __future__ import annotations

import numpy as np
import pytest

from convbench import oracle
from convbench.algorithms import registry
from convbench.measure.memory import peak_extra_bytes
from convbench.problems import Problem, parse

# Bias, groups, stride 2, dilation 2, per-axis sizes; rank 1 and per-side padding (lowering);
# rank 3; channels last at ranks 2 and 3.
FORWARD = [
    "n2c4h9k6r3p1b1", "n2c6h11w13k4r3s2st2p1d2g2b1", "n1c4h9k4r3st2p1d2",
    "n2c6w17k4s3st2p1", "n2c6w13k4s3p2pe0d2b1", "n2c4h9w10k6r3st2pe1",
    "n2c4id6h7w8k6r3p1b1", "n1c4id7h6w9k6kd2r3s2sd2sh1sw2p1d2g2", "n2c4id7h7k4r3st2p1d2",
    "n2c4id6h5k4r3p0pe1",
    "nhwc_n2c4h9k6r3st2p1b1", "nhwc_n2c4id5h6k4r3p1g2",
]


def _fft(p: Problem) -> registry.Algorithm:
    algorithm = registry.get(p.op, "fft")
    assert algorithm.why_not(p, "numpy") is None, p
    return algorithm


def _checked(p: Problem, result: np.ndarray | tuple[np.ndarray, ...],
             inputs: oracle.Inputs) -> None:
    algorithm = registry.get(p.op, "fft")
    check = oracle.check(p, result, oracle.reference(p, inputs), algorithm.tolerance_factor,
                         False, algorithm.tolerance_floor_eps, algorithm.error_spreads)
    assert check.ok, check


@pytest.mark.parametrize("descriptor", FORWARD)
def test_fft_forward_matches_the_oracle_at_every_rank(descriptor: str) -> None:
    p = parse(descriptor)
    inputs = oracle.make_inputs(p, seed=41)
    y = _fft(p).run(p, *inputs.arrays)
    assert y.shape == p.output_shape
    _checked(p, y, inputs)


@pytest.mark.parametrize("descriptor", ["nhwc_n2c4h9k6r3st2p1b1", "nhwc_n2c4id5h6k4r3p1g2"])
def test_fft_results_of_channels_last_inputs_stay_channels_last(descriptor: str) -> None:
    p = parse(descriptor)
    y = _fft(p).run(p, *oracle.make_inputs(p).arrays)
    assert np.moveaxis(y, 1, -1).flags.c_contiguous


@pytest.mark.parametrize("descriptor", ["n2c6w17k4s3st2p1", "n2c4id6h7w8k6r3p1b1"])
def test_fft_prepared_filter_transform_at_ranks_1_and_3(descriptor: str) -> None:
    """The weight-only transform (bridged like the call) gives the same result as the call."""
    p = parse(descriptor)
    algorithm, arrays = _fft(p), oracle.make_inputs(p, seed=42).arrays
    state = algorithm.prepared(p, *arrays)
    np.testing.assert_array_equal(algorithm.run(p, *arrays, prepared=state),
                                  algorithm.run(p, *arrays))


@pytest.mark.parametrize("direction", ["bwd_data", "bwd_weight"])
@pytest.mark.parametrize("descriptor", FORWARD)
def test_fft_backward_matches_the_oracle_at_every_rank(descriptor: str, direction: str) -> None:
    """Both directions of every forward case; bwd_weight returns (grad_w, grad_bias) with a
    bias (the oracle checks both), grad_w alone without."""
    p = parse(f"{direction}_{descriptor}")
    inputs = oracle.make_inputs(p, seed=43)
    result = _fft(p).run(p, *inputs.arrays)
    if direction == "bwd_data":
        assert result.shape == p.input_shape
    elif p.bias:
        grad_w, grad_bias = result
        assert (grad_w.shape, grad_bias.shape) == (p.weight_shape, (p.k,))
    else:
        assert result.shape == p.weight_shape
    _checked(p, result, inputs)


def test_fft_weight_gradient_reads_every_tap_of_a_large_dilated_kernel() -> None:
    """A 7x5 kernel at dilation (2, 3) with stride (3, 2) over a padded input: the lags read
    are multiples of the dilation, the spread gradient is every stride-th pixel."""
    p = parse("bwd_weight_n3c4h23w19k6r7s5sh3sw2ph5pw4dh2dw3b1")
    inputs = oracle.make_inputs(p, seed=44)
    _checked(p, _fft(p).run(p, *inputs.arrays), inputs)


def test_winograd_still_refuses_the_weight_gradient() -> None:
    p = parse("bwd_weight_n2c4h9k6r3p1")
    assert registry.get(p.op, "winograd_f2x3").why_not(p) == (
        "bwd_data only (bwd_weight is no convolution)")


@pytest.mark.parametrize("descriptor", [
    "n2c16id10h12k16r3p1", "nhwc_n2c16id10h12k16r3p1", "n2c16id9h10k8r3st2p1g2",
    "bwd_data_n2c16id10h12k16r3p1", "bwd_data_nhwc_n2c16id9h10k8r3st2p1g2",
    "bwd_weight_n2c16h20k16r3p1", "bwd_weight_n2c16id10h12k16r3p1",
    "bwd_weight_nhwc_n2c16id10h12k16r3p1b1", "bwd_weight_n2c16id9h10k8r3st2p1g2",
    "bwd_weight_n8c4h20k32r3p1",
])
def test_fft_workspace_model_matches_numpy_measurement(descriptor: str) -> None:
    p = parse(descriptor)
    algorithm = _fft(p)
    arrays = oracle.make_inputs(p).arrays
    call = algorithm.bind(p)
    call(p, *arrays)  # warm-up: caches outside the measurement
    reading = peak_extra_bytes(lambda: call(p, *arrays))
    assert reading.peak_extra_bytes is not None, reading.note
    model = algorithm.workspace(p)
    assert 0.9 * model <= reading.peak_extra_bytes <= 1.1 * model, (reading, model)
