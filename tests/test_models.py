"""Models as suites: a torch model's layers (traced on the meta device) against the layers its
own forward hooks see on a real run, shape for shape, count for count and value for value; a
hand-built ONNX graph (asymmetric pads, SAME_UPPER, ceil mode, count_include_pad=0, a global
pool) against ONNX's reference evaluator; an exported torch model against its trace; each run
through the harness."""

from __future__ import annotations

import sys
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from convbench.api.checks import run as run_problem
from convbench.models import (MissingExtra, Network, read_factory, read_onnx, suite_from_module,
                              trace_module)
from convbench.run.rundir import read_results
from convbench.run.runner import RunOptions, run
from convbench.run.suite import load_suite

torch = pytest.importorskip("torch")
nn = torch.nn

WATCHED = tuple(getattr(nn, f"{kind}{rank}d") for rank in (1, 2, 3) for kind in (
    "Conv", "ConvTranspose", "MaxPool", "AvgPool", "AdaptiveAvgPool", "AdaptiveMaxPool"))
ALGORITHM = {"conv": "im2col", "deconv": "im2col", "pool": "windowed"}  # convbench's own


def hooked(model: Any, x: Any) -> list[tuple[str, Any, Any, Any]]:
    """(name, module, input, output) of every conv and pool module, in the order they ran, on a
    real forward pass."""
    calls: list[tuple[str, Any, Any, Any]] = []

    def hook(name: str) -> Any:
        return lambda m, i, o: calls.append((name, m, i[0], o[0] if isinstance(o, tuple) else o))

    handles = [m.register_forward_hook(hook(name)) for name, m in model.named_modules()
               if isinstance(m, WATCHED)]
    with torch.no_grad():
        model(x)
    for handle in handles:
        handle.remove()
    return calls


def convbench_output(problem: Any, x: np.ndarray, w: Any = None, b: Any = None) -> np.ndarray:
    """What convbench's own algorithm computes for `problem` on these arrays."""
    arrays = (x,) if problem.family == "pool" else (x, w, b)
    y = run_problem(problem, ALGORITHM[problem.family], *arrays)
    return y[0] if isinstance(y, tuple) else y


def module_input(module: Any, x: Any) -> np.ndarray:
    """The input as convbench's problem takes it: padded first by a padding mode (torch's own
    rule for it)."""
    mode = getattr(module, "padding_mode", "zeros")
    if mode != "zeros":
        x = torch.nn.functional.pad(x, module._reversed_padding_repeated_twice, mode=mode)
    return x.numpy()


def check_against_hooks(network: Network, model: Any, x: Any) -> None:
    """The traced layers are the hooked ones, in order, with their shapes; convbench computes
    each one's output from its input and weights."""
    skipped = {s.name for s in network.skipped}
    calls = [c for c in hooked(model, x) if c[0] not in skipped]
    assert [layer.name for layer in network.layers] == [name for name, *_ in calls]
    for layer, (name, module, x_in, y) in zip(network.layers, calls, strict=True):
        p = layer.problem
        assert p.output_shape == tuple(y.shape), name
        weights = [None if t is None else t.detach().numpy() for t in
                   (getattr(module, "weight", None), getattr(module, "bias", None))]
        got = convbench_output(p, module_input(module, x_in), *weights)
        assert_close(got, y.numpy(), name)


def assert_close(got: np.ndarray, expected: np.ndarray, name: str) -> None:
    """Equal up to float32 rounding at the output's scale: a wrong padding, stride or divisor
    is off by far more."""
    scale = float(np.abs(expected).max()) + 1.0
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * scale, err_msg=name)


def hook_groups(model: Any, x: Any) -> list[int]:
    """How often each distinct layer (module configuration and input shape) runs, in order of
    first appearance."""
    keys = [(type(m).__name__, m.extra_repr(), tuple(i.shape)) for _, m, i, _ in hooked(model, x)]
    return list(Counter(keys).values())


# --- torchvision models ------------------------------------------------------------------


def test_resnet50_layers_match_forward_hooks(torchvision: Any) -> None:
    network = read_factory("torchvision:resnet50", "1x3x224x224")
    model = torchvision.models.resnet50(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    check_against_hooks(network, model, x)
    suite = network.suite()
    assert (len(network.layers), len(suite.cases)) == (55, 25)  # 53 convs, 2 pools
    assert [c.count for c in suite.cases] == hook_groups(model, x)
    assert suite.network and suite.cases[0].name == "conv1" and network.skipped == ()
    # the 23 distinct convolutions are the shipped resnet50 suite's, with its counts
    shipped = [(replace_n(c.problem), c.count) for c in load_suite("resnet50").cases]
    assert [(c.problem, c.count) for c in suite.cases if c.problem.family == "conv"] == shipped


def replace_n(problem: Any) -> Any:
    from dataclasses import replace

    return replace(problem, n=1)


def test_mobilenet_v3_small_layers_match_forward_hooks(torchvision: Any) -> None:
    network = read_factory("torchvision:mobilenet_v3_small", (1, 3, 224, 224))
    model = torchvision.models.mobilenet_v3_small(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    check_against_hooks(network, model, x)
    suite = network.suite()
    assert (len(network.layers), len(suite.cases)) == (62, 48)  # 52 convs, 10 pools
    assert [c.count for c in suite.cases] == hook_groups(model, x)
    depthwise = [c for c in suite.cases if getattr(c.problem, "groups", 1) > 1]
    assert depthwise and all(c.problem.groups == c.problem.c for c in depthwise)
    # the squeeze-excitation pools and the head's are global: one window the size of the input
    pools = [c.problem for c in suite.cases if c.problem.family == "pool"]
    assert pools and all(p.kernel == p.size and p.out_size == (1, 1) for p in pools)


# --- a module of every kind --------------------------------------------------------------


class EveryKind(nn.Module):
    """Every module kind convbench reads, at ranks 1-3, with the semantics that matter."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1d = nn.Conv1d(4, 8, 5, padding="same", dilation=2)
        self.max1d = nn.MaxPool1d(3, stride=2, padding=1, ceil_mode=True)
        self.conv3d = nn.Conv3d(2, 4, 3, padding=1, padding_mode="reflect", bias=False)
        self.avg3d = nn.AvgPool3d(2, ceil_mode=True, count_include_pad=False)
        self.deconv = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, groups=2)
        self.same = nn.Conv2d(6, 6, 4, padding="same", padding_mode="circular")
        self.avg2d = nn.AvgPool2d(3, stride=2, padding=1, divisor_override=4)
        self.adaptive = nn.AdaptiveAvgPool2d((3, 2))
        self.uneven = nn.AdaptiveMaxPool2d(5)
        self.lp = nn.LPPool2d(2, 2)

    def forward(self, x: Any) -> Any:
        self.max1d(self.conv1d(x[:, :, 0, :] + torch.ones(x.shape[-1])))  # made on x's device
        self.avg3d(self.conv3d(x[:, :2, None].expand(-1, -1, 5, -1, -1)))
        z = self.same(self.deconv(x, output_size=(16, 16)))
        z = self.avg2d(z)
        self.lp(z)
        self.uneven(z)
        return self.adaptive(z[..., :6, :4])


def test_every_kind_of_layer_with_its_semantics() -> None:
    model, x = EveryKind().eval(), torch.randn(2, 4, 8, 8)
    network = trace_module(model, tuple(x.shape))
    check_against_hooks(network, model, x)
    by_name = {layer.name: layer for layer in network.layers}
    assert str(by_name["conv1d"].problem) == "n2c4w8k8s5p4d2b1"  # 'same': 2 * 4 / 2 a side
    assert by_name["max1d"].problem.ceil_mode
    assert by_name["conv3d"].problem.padding == (0, 0, 0)  # reflect: padded before, untimed
    assert by_name["conv3d"].note.startswith("reflect padding ((1, 1), (1, 1), (1, 1))")
    assert not by_name["avg3d"].problem.count_include_pad
    assert by_name["deconv"].problem.output_padding == (1, 1)  # from output_size=(16, 16)
    assert by_name["same"].note.startswith("circular padding ((1, 2), (1, 2))")
    assert by_name["avg2d"].problem.divisor_override == 4
    assert by_name["adaptive"].problem.kernel == (2, 2)  # (6, 4) -> (3, 2): windows of 2
    assert {(s.name, s.kind) for s in network.skipped} == {("lp", "LPPool2d"),
                                                           ("uneven", "AdaptiveMaxPool2d")}
    assert "unequal sizes" in str(next(s for s in network.skipped if s.name == "uneven"))
    names = [c.name for c in network.suite().cases]
    assert "conv3d_reflect" in names and "same_circular" in names


def test_a_float64_model_traces_in_float64() -> None:
    network = trace_module(nn.Conv2d(3, 8, 3).double(), (1, 3, 8, 8))
    assert network.layers[0].problem.dtype == "float64"


def test_channels_last_is_recorded_and_the_module_is_left_as_it_was() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.MaxPool2d(2))
    suite = suite_from_module(model, (1, 3, 16, 16))
    assert [c.problem.layout for c in suite.cases] == ["nchw", "nchw"]
    network = trace_module(model, (1, 3, 16, 16), channels_last=True)
    assert network.layers[0].problem.layout == "nhwc"
    assert model[0].weight.device.type == "cpu" and not model[0]._forward_hooks


def test_a_model_without_layers_or_with_a_bad_input_says_so() -> None:
    with pytest.raises(ValueError, match="no convolution or pooling layer"):
        trace_module(nn.ReLU(), (1, 3, 8, 8)).suite()
    with pytest.raises(ValueError, match=r"on 1x4x8x8: the forward pass raised"):
        trace_module(nn.Conv2d(3, 8, 3), "1x4x8x8")
    with pytest.raises(ValueError, match="input shape must be"):
        trace_module(nn.Conv2d(3, 8, 3), "1x3")


@pytest.mark.parametrize(("spec", "message"), [
    ("resnet50", "expected package.module:factory"),
    ("no_such_module_x:build", "no module named 'no_such_module_x'"),
    ("torch.nn:no_such_factory", "has no callable 'no_such_factory'"),
    ("torch.nn:Conv2d", "building the model raised TypeError"),
])
def test_a_bad_spec_is_named(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_factory(spec)


def test_a_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torchvision", None)
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MissingExtra, match=r"pip install 'convbench\[models\]'"):
        read_factory("torchvision:resnet50")
    with pytest.raises(MissingExtra, match=r"pip install 'convbench\[onnx\]'"):
        read_onnx("any.onnx")


# --- ONNX ----------------------------------------------------------------------------------


def build_onnx(onnx: Any, path: Path, batch: int | str = "N") -> Path:
    """A graph of every node kind convbench reads, with asymmetric pads (and one it does not,
    LpPool); random weights."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = {"w1": (8, 3, 3, 3), "w2": (8, 8, 3, 3), "b2": (8,), "wt": (8, 4, 2, 2)}
    initializers = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
                    for n, s in weights.items()]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv_asym", pads=[0, 0, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv_same",
                         auto_pad="SAME_UPPER", strides=[2, 2]),
        helper.make_node("MaxPool", ["c2"], ["m"], name="max_ceil", kernel_shape=[2, 2],
                         strides=[2, 2], ceil_mode=1),
        helper.make_node("AveragePool", ["m"], ["a"], name="avg_exclusive", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], count_include_pad=0),
        helper.make_node("ConvTranspose", ["a", "wt"], ["t"], name="deconv", strides=[2, 2],
                         pads=[0, 0, 1, 1]),
        helper.make_node("LpPool", ["t"], ["lp"], name="lp", kernel_shape=[2, 2]),
        helper.make_node("GlobalAveragePool", ["t"], ["y"], name="global"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 15, 15])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4, 1, 1])
    model = helper.make_model(helper.make_graph(nodes, "every_kind", [x], [y], initializers),
                              opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def check_against_reference(onnx: Any, path: Path, network: Network, x: np.ndarray) -> None:
    """Each layer's convbench output equals ONNX's reference evaluator's on the same input."""
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    model = onnx.load(str(path))
    nodes = {node.name: node for node in model.graph.node}
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    names = sorted({name for node in nodes.values() for name in [*node.input, *node.output]}
                   - set(values) - {"x", ""})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values |= dict(zip(names, ReferenceEvaluator(model).run(names, {"x": x})))
    values["x"] = x
    for layer in network.layers:
        node = nodes[layer.name]
        arrays = [values[name] if name else None for name in node.input]
        got = convbench_output(layer.problem, *arrays, *([None] * (3 - len(arrays))))
        assert_close(got, values[node.output[0]], layer.name)


def test_an_onnx_graph_with_asymmetric_pads(onnx: Any, tmp_path: Path) -> None:
    path = build_onnx(onnx, tmp_path / "every_kind.onnx")
    with pytest.raises(ValueError, match=r"input 'x' has a dynamic dimension 0 \(N\).*--input"):
        read_onnx(path)
    network = read_onnx(path, {"x": "2x3x15x15"})
    problems = {layer.name: layer.problem for layer in network.layers}
    assert list(problems) == ["conv_asym", "conv_same", "max_ceil", "avg_exclusive", "deconv",
                              "global"]
    assert (problems["conv_asym"].padding, problems["conv_asym"].padding_after) == ((0, 0),
                                                                                    (1, 1))
    # SAME_UPPER, stride 2 on 14: out 7, one pixel of padding, after
    assert (problems["conv_same"].padding, problems["conv_same"].padding_after) == ((0, 0),
                                                                                    (1, 1))
    assert problems["conv_same"].bias and problems["max_ceil"].ceil_mode
    assert problems["max_ceil"].out_size == (4, 4)  # ceil(6 / 2) + 1 from 7
    assert not problems["avg_exclusive"].count_include_pad
    assert problems["deconv"].padding_after == (1, 1) and problems["deconv"].out_size == (7, 7)
    assert problems["global"].kernel == (7, 7)
    assert [(s.name, s.kind) for s in network.skipped] == [("lp", "LpPool")]
    x = np.random.default_rng(1).standard_normal((2, 3, 15, 15)).astype(np.float32)
    check_against_reference(onnx, path, network, x)


def test_an_onnx_graph_runs_through_the_harness(onnx: Any, tmp_path: Path) -> None:
    path = build_onnx(onnx, tmp_path / "every_kind.onnx", batch=1)
    suite = read_onnx(path).suite(min_repeats=1)
    results = read_results(run(suite, tmp_path / "out", RunOptions(
        algorithms=("im2col", "windowed", "torch"), budget_s=0.01)))
    assert set(results["status"]) <= {"ok", "unsupported", "skipped"}
    ok = results[results["status"] == "ok"]
    assert set(ok["case"]) == {c.name for c in suite.cases}
    assert set(ok[ok["algo"] != "torch"]["case"]) == {c.name for c in suite.cases}


class Exported(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(3, 8, 4, padding="same"),  # even kernel: one more pixel after
            nn.MaxPool2d(3, 2, ceil_mode=True),
            nn.AvgPool2d(3, 2, padding=1, count_include_pad=False),
            nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1),
            nn.Conv2d(4, 4, 3, groups=2, dilation=2),
            nn.AdaptiveAvgPool2d(1))

    def forward(self, x: Any) -> Any:
        return self.layers(x)


def test_an_onnx_file_exported_from_torch(onnx: Any, tmp_path: Path) -> None:
    """The exporter's nodes (SAME_UPPER for the even 'same' kernel, ceil mode, a global pool for
    the adaptive one) read as the same problems as the torch model's trace, and run."""
    model, path = Exported().eval(), tmp_path / "exported.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation
        torch.onnx.export(model, (torch.zeros(1, 3, 17, 17),), str(path), dynamo=False,
                          input_names=["image"])
    network = read_onnx(path)
    traced = trace_module(model, (1, 3, 17, 17))
    assert [layer.problem for layer in network.layers] == [l.problem for l in traced.layers]
    assert network.layers[0].problem.padding_after == (2, 2)  # total 3: 1 before, 2 after
    assert network.source == "exported.onnx on image=1x3x17x17"
    results = read_results(run(network.suite(min_repeats=1), tmp_path / "out", RunOptions(
        algorithms=("im2col", "windowed", "torch"), budget_s=0.01)))
    assert set(results["status"]) <= {"ok", "unsupported", "skipped"}


def test_onnx_input_errors(onnx: Any, tmp_path: Path) -> None:
    path = build_onnx(onnx, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=r"has no input 'image' \(its inputs: x\)"):
        read_onnx(path, {"image": (1, 3, 15, 15)})
    with pytest.raises(ValueError, match="has input 'x' of rank 4, got 3 dims"):
        read_onnx(path, "1x3x15")
    with pytest.raises(ValueError, match="does not exist"):
        read_onnx(tmp_path / "nothing.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"\xff\xff\xff not protobuf")
    with pytest.raises(ValueError, match="not an ONNX model"):
        read_onnx(tmp_path / "bad.onnx")

