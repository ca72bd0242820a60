"""An ONNX file's conv and pooling nodes, with their shapes from ONNX's shape inference.

`read_onnx("model.onnx")` loads the file (onnx.load, with its external data), pins the graph
inputs' shapes where asked (`inputs={"x": (1, 3, 224, 224)}`; on the command line
`--input x=1x3x224x224`), refuses an input with a dynamic dimension left unpinned (naming the
input and the dimension), runs onnx.shape_inference.infer_shapes, and reads every Conv,
ConvTranspose, MaxPool, AveragePool, GlobalAveragePool and GlobalMaxPool node of the main graph
in order: `pads`, `auto_pad` (convbench.onnx_padding), `strides`, `dilations`, `group`,
`kernel_shape`, `ceil_mode`, `count_include_pad`, `output_padding`, `output_shape`. Other nodes
are not layers and are passed over; conv-like nodes convbench cannot model (ConvInteger,
QLinearConv, LpPool, a contrib op, ...) are listed as skipped with the reason. A node whose
problem's output shape differs from the inferred one is skipped too, with both shapes.
Subgraphs (If, Loop bodies) are not read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from convbench.api.padding import onnx_padding
from convbench.models.network import (Layer, Network, Skipped, dtype_reason, format_shape,
                                      parse_shape, shape_mismatch)
from convbench.models.optional import import_onnx
from convbench.problems import ConvProblem, ConvTransposeProblem, PoolProblem, Problem

InputShapes = Mapping[str, str | Sequence[int]] | str | Sequence[int] | None
Shape = tuple[int | None, ...]  # None: a dimension shape inference left unknown
STANDARD_DOMAINS = ("", "ai.onnx")
UNMODELLED = {
    "ConvInteger": "integer convolution (uint8/int8 with zero points) is not one of "
                   "convbench's ops",
    "QLinearConv": "quantized convolution is not one of convbench's ops",
    "DeformConv": "deformable convolution is not one of convbench's ops",
    "LpPool": "power-average pooling is not one of convbench's ops",
    "GlobalLpPool": "power-average pooling is not one of convbench's ops",
    "MaxUnpool": "max unpooling is not one of convbench's ops",
    "MaxRoiPool": "region-of-interest pooling is not one of convbench's ops",
}


def read_onnx(path: str | Path, inputs: InputShapes = None) -> Network:
    """The conv and pooling layers of the ONNX model at `path`, in graph order. `inputs` pins
    graph input shapes: {name: shape}, or one shape for a model with one input."""
    onnx = import_onnx()
    path = Path(path)
    model = _load(onnx, path)
    pinned = _pin(model, path, inputs)
    shapes = _infer(onnx, model, path)
    layers, skipped = [], []
    for index, node in enumerate(model.graph.node):
        name = node.name or f"{node.op_type}_{index}"
        try:
            layer = layer_of(onnx, node, name, shapes)
        except ValueError as error:
            skipped.append(Skipped(name, node.op_type, str(error)))
            continue
        if layer is not None:
            layers.append(layer)
    source = f"{path.name} on {', '.join(f'{n}={format_shape(s)}' for n, s in pinned.items())}"
    return Network(re.sub(r"\W+", "_", path.stem).strip("_") or "onnx", source, tuple(layers),
                   tuple(skipped))


def suite_from_onnx(path: str | Path, inputs: InputShapes = None, **settings: Any) -> Any:
    """The Suite of the ONNX model's layers (read_onnx): distinct layers in graph order, each
    with its count; `settings` are Suite fields."""
    return read_onnx(path, inputs).suite(**settings)


def _load(onnx: Any, path: Path) -> Any:
    from google.protobuf.message import DecodeError

    if not path.is_file():
        why = "is not a file" if path.exists() else "does not exist"
        raise ValueError(f"ONNX file {str(path)!r} {why}")
    try:
        return onnx.load(str(path))
    except DecodeError as error:
        raise ValueError(f"{path}: not an ONNX model ({error})") from None


def _graph_inputs(model: Any) -> list[Any]:
    """The graph's real inputs: its inputs less the initializers (weights listed as inputs)."""
    weights = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in weights]


def _pin(model: Any, path: Path, inputs: InputShapes) -> dict[str, tuple[int, ...]]:
    """Set the shapes `inputs` gives on the graph's inputs; every input's shape, all static
    now, or ValueError naming the input and its dynamic dimension."""
    graph_inputs = {i.name: i for i in _graph_inputs(model)}
    given = _named(inputs, list(graph_inputs), path)
    shapes = {}
    for name, value in graph_inputs.items():
        dims = value.type.tensor_type.shape.dim
        if not value.type.tensor_type.HasField("shape") and name not in given:
            raise ValueError(f"{path}: input {name!r} has no shape; pin it with --input "
                             f"{name}=SHAPE")
        if name in given:
            if len(given[name]) != len(dims) and len(dims):
                raise ValueError(f"--input {name}={format_shape(given[name])}: {path} has input "
                                 f"{name!r} of rank {len(dims)}, got {len(given[name])} dims")
            del dims[:]
            for d in given[name]:
                dims.add().dim_value = d
        shapes[name] = _static(name, dims, path)
    return shapes


def _named(inputs: InputShapes, names: list[str], path: Path) -> dict[str, tuple[int, ...]]:
    """{input name: shape} from `inputs`; a bare shape is the only input's."""
    if inputs is None:
        return {}
    if not isinstance(inputs, Mapping):
        if len(names) != 1:
            raise ValueError(f"--input: {path} has {len(names)} inputs ({', '.join(names)}); "
                             "name the one to pin: --input NAME=SHAPE")
        inputs = {names[0]: inputs}
    for name in inputs:
        if name not in names:
            raise ValueError(f"--input {name}=...: {path} has no input {name!r} (its inputs: "
                             f"{', '.join(names) or 'none'})")
    return {name: parse_shape(shape, ranks=None) for name, shape in inputs.items()}


def _static(name: str, dims: Any, path: Path) -> tuple[int, ...]:
    for axis, dim in enumerate(dims):
        if not dim.HasField("dim_value") or dim.dim_value < 1:
            label = f" ({dim.dim_param})" if dim.dim_param else ""
            shown = "x".join(str(d.dim_value) if d.HasField("dim_value") else "?" for d in dims)
            raise ValueError(f"{path}: input {name!r} has a dynamic dimension {axis}{label} "
                             f"(shape {shown}); pin it with --input {name}=SHAPE")
    return tuple(d.dim_value for d in dims)


def _infer(onnx: Any, model: Any, path: Path) -> dict[str, tuple[Shape, str]]:
    """Every tensor's (shape, dtype) after ONNX's shape inference, weights included."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as error:  # onnx raises InferenceError, ValidationError, RuntimeError
        raise ValueError(f"{path}: ONNX shape inference failed: {error}") from None
    shapes = {}
    graph = inferred.graph
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tensor = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
        shapes[value.name] = (dims if tensor.HasField("shape") else (), _dtype(onnx,
                                                                           tensor.elem_type))
    for weight in graph.initializer:
        shapes[weight.name] = (tuple(weight.dims), _dtype(onnx, weight.data_type))
    return shapes


def _dtype(onnx: Any, elem_type: int) -> str:
    try:
        return str(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, ValueError, TypeError):
        return "an unknown type"


def layer_of(onnx: Any, node: Any, name: str, shapes: dict[str, tuple[Shape, str]]
             ) -> Layer | None:
    """The node as a Layer; None for a node that is no conv or pool; ValueError with the reason
    for one convbench cannot model."""
    if node.domain not in STANDARD_DOMAINS:
        if re.search(r"Conv|Pool", node.op_type):
            raise ValueError(f"{node.domain}.{node.op_type} is not a standard ONNX op; "
                             "convbench reads the standard ones")
        return None
    if node.op_type in UNMODELLED:
        raise ValueError(UNMODELLED[node.op_type])
    reader = _READERS.get(node.op_type)
    if reader is None:
        return None
    attributes = {a.name: _attribute(onnx, a) for a in node.attribute}
    x, dtype = _known(shapes, node.input[0], "input")
    reason = dtype_reason(dtype)
    if reason:
        raise ValueError(reason)
    if not 3 <= len(x) <= 5:
        raise ValueError(f"its input is {format_shape(x)}: convbench's problems have 1 to 3 "
                         "spatial axes")
    problem = reader(node, attributes, x, dtype, shapes)
    y = shapes.get(node.output[0], ((), ""))[0]
    if y and None not in y:
        mismatch = shape_mismatch(problem, y)  # type: ignore[arg-type]
        if mismatch:
            raise ValueError(mismatch.replace("the model's output", "ONNX infers an output"))
    return Layer(name, problem)


def _attribute(onnx: Any, attribute: Any) -> Any:
    value = onnx.helper.get_attribute_value(attribute)
    return value.decode() if isinstance(value, bytes) else value


def _known(shapes: dict[str, tuple[Shape, str]], tensor: str, what: str
           ) -> tuple[tuple[int, ...], str]:
    shape, dtype = shapes.get(tensor, ((), ""))
    if not shape or None in shape:
        raise ValueError(f"the shape of its {what} {tensor!r} is unknown after shape inference")
    return shape, dtype  # type: ignore[return-value]


def _geometry(attributes: dict[str, Any], size: tuple[int, ...], kernel: Sequence[int]
              ) -> dict[str, Any]:
    """kernel, stride, dilation and per-side padding from the attributes (ONNX's defaults:
    stride 1, dilation 1, no padding)."""
    rank = len(size)
    stride = tuple(attributes.get("strides", (1,) * rank))
    dilation = tuple(attributes.get("dilations", (1,) * rank))
    pads = onnx_padding(size, tuple(kernel), stride, dilation, attributes.get("pads"),
                        attributes.get("auto_pad", "NOTSET"))
    return dict(size=size, kernel=tuple(kernel), stride=stride, padding=pads, dilation=dilation)


def _bias(node: Any) -> bool:
    return len(node.input) > 2 and bool(node.input[2])


def _conv(node: Any, attributes: dict[str, Any], x: tuple[int, ...], dtype: str,
          shapes: dict[str, tuple[Shape, str]]) -> Problem:
    w, _ = _known(shapes, node.input[1], "weights")
    group = attributes.get("group", 1)
    kernel = attributes.get("kernel_shape", w[2:])
    problem = ConvProblem(x[0], x[1], k=w[0], groups=group, bias=_bias(node), dtype=dtype,
                          **_geometry(attributes, x[2:], kernel))
    if tuple(problem.weight_shape) != w:
        raise ValueError(f"its weights are {format_shape(w)}, the problem's "
                         f"{format_shape(problem.weight_shape)}")
    return problem


def _conv_transpose(node: Any, attributes: dict[str, Any], x: tuple[int, ...], dtype: str,
                    shapes: dict[str, tuple[Shape, str]]) -> Problem:
    """ONNX's rule (its reference implementation): with auto_pad SAME_* and no pads, the
    padding is what gives output_shape (default input * stride), the odd pixel after for
    SAME_UPPER."""
    w, _ = _known(shapes, node.input[1], "weights")
    group = attributes.get("group", 1)
    size, rank = x[2:], len(x) - 2
    kernel = tuple(attributes.get("kernel_shape", w[2:]))
    stride = tuple(attributes.get("strides", (1,) * rank))
    dilation = tuple(attributes.get("dilations", (1,) * rank))
    output_padding = tuple(attributes.get("output_padding", (0,) * rank))
    auto_pad = attributes.get("auto_pad", "NOTSET")
    if "pads" not in attributes and auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = attributes.get("output_shape", tuple(i * s for i, s in zip(size, stride)))
        totals = [s * (i - 1) + op + (k - 1) * d + 1 - o for i, k, s, d, op, o in
                  zip(size, kernel, stride, dilation, output_padding, out[-rank:])]
        small = [t // 2 for t in totals]
        pads = tuple((s, t - s) if auto_pad == "SAME_UPPER" else (t - s, s)
                     for s, t in zip(small, totals))
    else:
        pads = onnx_padding(size, kernel, stride, dilation, attributes.get("pads"))
    return ConvTransposeProblem(x[0], x[1], k=w[1] * group, size=size, kernel=kernel,
                                stride=stride, padding=pads, output_padding=output_padding,
                                dilation=dilation, groups=group, bias=_bias(node), dtype=dtype)


def _pool(kind: str) -> Callable[..., Problem]:
    def pool(node: Any, attributes: dict[str, Any], x: tuple[int, ...], dtype: str,
             shapes: dict[str, tuple[Shape, str]]) -> Problem:
        if "kernel_shape" not in attributes:
            raise ValueError("it has no kernel_shape")
        options = dict(ceil_mode=bool(attributes.get("ceil_mode", 0)))
        if kind == "avg":  # ONNX's default leaves the padding out of the average
            options["count_include_pad"] = bool(attributes.get("count_include_pad", 0))
        return PoolProblem(kind, x[0], x[1], dtype=dtype, **options,
                           **_geometry(attributes, x[2:], attributes["kernel_shape"]))

    return pool


def _global_pool(kind: str) -> Callable[..., Problem]:
    def pool(node: Any, attributes: dict[str, Any], x: tuple[int, ...], dtype: str,
             shapes: dict[str, tuple[Shape, str]]) -> Problem:
        return PoolProblem(kind, x[0], x[1], size=x[2:], kernel=x[2:], stride=x[2:],
                           dtype=dtype)

    return pool


_READERS: dict[str, Callable[..., Problem]] = {
    "Conv": _conv, "ConvTranspose": _conv_transpose, "MaxPool": _pool("max"),
    "AveragePool": _pool("avg"), "GlobalAveragePool": _global_pool("avg"),
    "GlobalMaxPool": _global_pool("max"),
}
