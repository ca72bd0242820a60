"""A torch model's conv and pooling layers, read by running it once on the meta device.

`trace_module(module, (1, 3, 224, 224))` puts a forward hook on every Conv, ConvTranspose,
MaxPool, AvgPool and adaptive pool module and calls the model on a meta tensor of that shape,
with meta copies of its parameters and buffers (torch.func.functional_call): shapes propagate,
nothing is computed or allocated, and the module itself is left as it was. Each hook turns its
module's hyper-parameters and the input it got into a problem, in the order the layers ran.
Only modules are seen: a functional call in a forward (F.conv2d(x, w)) is not a layer.

`read_factory("torchvision:resnet50", shape)` builds the model from a factory first, with no
weights (weights=None when the factory takes it) and on the meta device, so nothing is
downloaded and no weight is initialised. "package.module:factory" names any importable callable
returning an nn.Module; "torchvision:NAME" is torchvision.models.get_model(NAME).
"""

from __future__ import annotations

import importlib
import inspect
import re
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from convbench.models.network import (Layer, Network, Skipped, dtype_reason, format_shape,
                                      parse_shape, shape_mismatch)
from convbench.models.optional import import_torchvision
from convbench.problems import ConvProblem, ConvTransposeProblem, PoolProblem, Problem

if TYPE_CHECKING:
    import torch

DEFAULT_INPUT = (1, 3, 224, 224)  # ImageNet's: what torchvision's classifiers take
# Pooling modules with no convbench problem (by class name), and why.
UNMODELLED = {
    "LPPool": "power-average pooling (LPPool) is not one of convbench's ops",
    "FractionalMaxPool": "fractional max pooling has random windows; not one of convbench's ops",
}


def trace_module(module: torch.nn.Module, input_shape: str | Sequence[int] = DEFAULT_INPUT, *,
                 name: str | None = None, source: str | None = None,
                 channels_last: bool = False) -> Network:
    """The conv and pooling layers `module` runs on an input of `input_shape` (NxCxL, NxCxHxW,
    NxCxDxHxW; channels_last: that input in channels-last memory), in order. The input has the
    dtype of the module's first floating-point parameter (float32 when it has none)."""
    import torch

    shape = parse_shape(input_shape)
    name = name or _snake(type(module).__name__)
    source = source or f"{type(module).__name__} on {format_shape(shape)}"
    recorder = _Recorder()
    dtype = next((p.dtype for p in module.parameters() if p.is_floating_point()), torch.float32)
    x = torch.empty(shape, dtype=dtype, device="meta",
                    memory_format=_memory_format(shape, channels_last))
    handles = [m.register_forward_hook(recorder.hook(path)) for path, m in
               module.named_modules() if _watched(m)]
    try:
        _forward_on_meta(module, x, source)
    finally:
        for handle in handles:
            handle.remove()
    return Network(name, source, tuple(recorder.layers), tuple(recorder.skipped))


def suite_from_module(module: torch.nn.Module, input_shape: str | Sequence[int] = DEFAULT_INPUT,
                      **settings: Any) -> Any:
    """The Suite of `module`'s layers (trace_module) for `convbench.run.runner.run`: distinct
    layers in network order, each with its count; `settings` are Suite fields."""
    return trace_module(module, input_shape).suite(**settings)


def read_factory(spec: str, input_shape: str | Sequence[int] = DEFAULT_INPUT, *,
                 channels_last: bool = False) -> Network:
    """The layers of the model `spec` ('package.module:factory' or 'torchvision:NAME') builds,
    built without weights on the meta device, on an input of `input_shape`."""
    try:
        shape = parse_shape(input_shape)
        _memory_format(shape, channels_last)
    except ValueError as error:
        raise ValueError(f"{spec}: {error}") from None
    module = build(spec)
    return trace_module(module, shape, name=re.sub(r"\W+", "_", spec).strip("_"),
                        source=f"{spec} on {format_shape(shape)}", channels_last=channels_last)


def build(spec: str) -> torch.nn.Module:
    """The model `spec` names, built on the meta device with no weights."""
    import torch

    factory = resolve(spec)
    arguments = {"weights": None} if _takes(factory, "weights") else {}
    try:
        with torch.device("meta"):
            module = factory(**arguments)
    except Exception as error:  # the factory is the user's code: say what it raised
        raise ValueError(f"{spec}: building the model raised {type(error).__name__}: "
                         f"{error}") from None
    if not isinstance(module, torch.nn.Module):
        raise ValueError(f"{spec}: the factory returned a {type(module).__name__}, not a "
                         "torch.nn.Module")
    return module


def resolve(spec: str) -> Callable[..., Any]:
    """The factory `spec` names; ValueError saying what is wrong with it."""
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not re.fullmatch(r"[\w.]+", attribute):
        raise ValueError(f"{spec}: expected package.module:factory, e.g. "
                         "torchvision:resnet50 or mypackage.nets:build")
    if module_name == "torchvision":
        return _torchvision_model(attribute)
    if module_name.partition(".")[0] == "torchvision":
        import_torchvision()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise ValueError(f"{spec}: no module named {error.name!r}") from None
    factory: Any = module
    for part in attribute.split("."):
        factory = getattr(factory, part, None)
    if not callable(factory):
        raise ValueError(f"{spec}: {module_name} has no callable {attribute!r}")
    return factory


def _torchvision_model(name: str) -> Callable[..., Any]:
    """torchvision.models.get_model's builder for `name` (classification, segmentation,
    detection, video, ...)."""
    torchvision = import_torchvision()
    try:
        return torchvision.models.get_model_builder(name)  # type: ignore[no-any-return]
    except ValueError:
        known = torchvision.models.list_models()
        close = [m for m in known if name.lower() in m]
        hint = f" (did you mean {', '.join(close[:5])}?)" if close else ""
        raise ValueError(f"torchvision:{name}: torchvision has no model {name!r}"
                         f"{hint}") from None


def _takes(factory: Callable[..., Any], argument: str) -> bool:
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return argument in parameters


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _memory_format(shape: tuple[int, ...], channels_last: bool) -> Any:
    import torch

    if not channels_last:
        return torch.contiguous_format
    formats = {4: torch.channels_last, 5: torch.channels_last_3d}
    if len(shape) not in formats:
        raise ValueError(f"channels last is for NxCxHxW and NxCxDxHxW inputs, got "
                         f"{format_shape(shape)}")
    return formats[len(shape)]


def _forward_on_meta(module: torch.nn.Module, x: torch.Tensor, source: str) -> None:
    """module(x) with meta copies of its parameters and buffers, and the meta device the
    default for tensors the forward creates: shapes only. The model's warnings are silenced:
    they speak of a run that is not happening (a padded copy torch would make, a deprecated
    argument), and under warnings-as-errors they would stop the trace."""
    import torch

    tensors = {name: torch.empty_like(t, device="meta") for name, t in
               [*module.named_parameters(), *module.named_buffers()]}
    try:
        with torch.no_grad(), torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.func.functional_call(module, tensors, (x,))
    except Exception as error:  # the model's own code, on an input it may not take
        message = " ".join(str(error).split())
        raise ValueError(f"{source}: the forward pass raised {type(error).__name__}: "
                         f"{message[:500]}") from None


# torch.nn's class names by kind; a kind's classes end in 1d, 2d, 3d (the rank).
KINDS = {"conv": "Conv", "transpose": "ConvTranspose", "max": "MaxPool", "avg": "AvgPool",
         "adaptive_max": "AdaptiveMaxPool", "adaptive_avg": "AdaptiveAvgPool",
         "unmodelled": tuple(UNMODELLED)}


def _watched(module: torch.nn.Module) -> bool:
    return _kind(module) is not None


def _kind(module: torch.nn.Module) -> tuple[str, int] | None:
    """(kind, rank) of a module convbench reads (a KINDS kind), else None; subclasses count
    as their torch.nn class."""
    from torch import nn

    for kind, prefixes in KINDS.items():
        for prefix in (prefixes,) if isinstance(prefixes, str) else prefixes:
            for rank in (1, 2, 3):
                cls = getattr(nn, f"{prefix}{rank}d", None)
                if cls is not None and isinstance(module, cls):
                    return kind, rank
    return None


class _Recorder:
    """Collects each watched module's layer, or its reason to be skipped, as it runs."""

    def __init__(self) -> None:
        self.layers: list[Layer] = []
        self.skipped: list[Skipped] = []

    def hook(self, path: str) -> Callable[..., None]:
        def record(module: torch.nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            name = path or _snake(type(module).__name__)
            y = output[0] if isinstance(output, tuple) else output  # (values, indices)
            try:
                self.layers.append(layer_of(module, name, inputs[0], y))
            except (ValueError, TypeError) as error:  # the problem's checks, and why
                self.skipped.append(Skipped(name, type(module).__name__, str(error)))

        return record


def layer_of(module: torch.nn.Module, name: str, x: torch.Tensor, y: torch.Tensor) -> Layer:
    """The Layer module computed from x to y; ValueError with the reason when convbench has no
    problem that is exactly it."""
    kind, rank = _kind(module) or ("", 0)
    if kind == "unmodelled":
        names = [cls.__name__ for cls in type(module).__mro__]
        raise ValueError(next(why for prefix, why in UNMODELLED.items()
                              if any(n.startswith(prefix) for n in names)))
    dtype = str(x.dtype).removeprefix("torch.")
    reason = dtype_reason(dtype)
    if reason:
        raise ValueError(reason)
    n, c, *size = x.shape if x.dim() == rank + 2 else (1, *x.shape)  # else unbatched
    common = dict(size=tuple(size), dtype=dtype, layout=_layout(x, rank))
    problem, note = _PROBLEMS[kind](module, n, c, common, tuple(y.shape[-rank:]))
    mismatch = shape_mismatch(problem, tuple(y.shape))
    if mismatch:
        raise ValueError(mismatch)
    return Layer(name, problem, note)


def _layout(x: torch.Tensor, rank: int) -> str:
    """nhwc when x lies channels last (the channel axis has stride 1 and more than one
    channel, and x is not plain contiguous), else nchw."""
    channel_axis = x.dim() - rank - 1
    if not x.is_contiguous() and x.shape[channel_axis] > 1 and x.stride(channel_axis) == 1:
        return "nhwc"
    return "nchw"


def _conv(module: Any, n: int, c: int, common: dict[str, Any], out: tuple[int, ...]
          ) -> tuple[Problem, str]:
    problem = ConvProblem(n, c, k=module.out_channels, kernel=module.kernel_size,
                          stride=module.stride, padding=module.padding,
                          dilation=module.dilation, groups=module.groups,
                          bias=module.bias is not None, **common)
    if module.padding_mode == "zeros":
        return problem, ""
    # torch pads x by the mode, then convolves with no padding: the same problem on the
    # padded input (convbench.conv2d(..., padding_mode=) does the same).
    sides = tuple(zip(problem.padding, problem.padding_after, strict=True))
    padded = tuple(i + before + after for i, (before, after) in zip(problem.size, sides,
                                                                    strict=True))
    note = (f"{module.padding_mode} padding {sides} of the input, done before the "
            "convolution and not timed")
    return ConvProblem(n, c, k=module.out_channels, kernel=module.kernel_size,
                       stride=module.stride, padding=0, dilation=module.dilation,
                       groups=module.groups, bias=module.bias is not None,
                       **(common | {"size": padded})), note


def _transpose(module: Any, n: int, c: int, common: dict[str, Any], out: tuple[int, ...]
               ) -> tuple[Problem, str]:
    """output_padding from the output the module gave: forward(x, output_size=...) sets it per
    call."""
    natural = ConvTransposeProblem(n, c, k=module.out_channels, kernel=module.kernel_size,
                                   stride=module.stride, padding=module.padding,
                                   dilation=module.dilation, groups=module.groups,
                                   bias=module.bias is not None, **common)
    extra = tuple(o - p for o, p in zip(out, natural.out_size, strict=True))
    return ConvTransposeProblem(n, c, k=module.out_channels, kernel=module.kernel_size,
                                stride=module.stride, padding=module.padding,
                                output_padding=extra, dilation=module.dilation,
                                groups=module.groups, bias=module.bias is not None,
                                **common), ""


def _axes(value: Any, rank: int) -> Any:
    """A pool module's int (for every axis) as one per axis; a tuple as it is."""
    return (value,) * rank if isinstance(value, int) else tuple(value)


def _window(module: Any, common: dict[str, Any]) -> dict[str, Any]:
    """kernel, stride (None: the window) and padding of a pool module, one per axis."""
    rank = len(common["size"])
    kernel = _axes(module.kernel_size, rank)
    stride = kernel if module.stride is None else _axes(module.stride, rank)
    return dict(kernel=kernel, stride=stride, padding=_axes(module.padding, rank))


def _max(module: Any, n: int, c: int, common: dict[str, Any], out: tuple[int, ...]
         ) -> tuple[Problem, str]:
    rank = len(common["size"])
    return PoolProblem("max", n, c, dilation=_axes(module.dilation, rank),
                       ceil_mode=module.ceil_mode, **_window(module, common), **common), ""


def _avg(module: Any, n: int, c: int, common: dict[str, Any], out: tuple[int, ...]
         ) -> tuple[Problem, str]:
    return PoolProblem("avg", n, c, ceil_mode=module.ceil_mode,
                       count_include_pad=module.count_include_pad,
                       divisor_override=getattr(module, "divisor_override", None),
                       **_window(module, common), **common), ""


def _adaptive(kind: str) -> Callable[..., tuple[Problem, str]]:
    def adaptive(module: Any, n: int, c: int, common: dict[str, Any], out: tuple[int, ...]
                 ) -> tuple[Problem, str]:
        """A fixed-window pool when every input size is a multiple of its output size (the
        windows are then in/out wide, in/out apart, as torch's adaptive windows are); a global
        pool when the output is 1."""
        size = common["size"]
        uneven = [(i, o) for i, o in zip(size, out, strict=True) if i % o]
        if uneven:
            i, o = uneven[0]
            raise ValueError(f"adaptive pooling from {i} to {o} has windows of unequal sizes; "
                             f"no fixed-window pool is exactly it")
        window = tuple(i // o for i, o in zip(size, out, strict=True))
        return PoolProblem(kind, n, c, kernel=window, stride=window, **common), ""

    return adaptive


_PROBLEMS: dict[str, Callable[..., tuple[Problem, str]]] = {
    "conv": _conv, "transpose": _transpose, "max": _max, "avg": _avg,
    "adaptive_max": _adaptive("max"), "adaptive_avg": _adaptive("avg"),
}
