"""Models as suites: a torch model or an ONNX file read into its conv and pooling layers, in
network order, identical layers merged with their count (the suite step: model -> problems).

network.py holds what both readers produce (Layer, Skipped, Network and its Suite);
torch_model.py reads an nn.Module or a `package.module:factory` on the meta device;
onnx_model.py reads an ONNX file with ONNX's shape inference; optional.py imports torchvision
and onnx, the optional extras, naming the extra when one is missing.
"""

from convbench.models.network import Layer, Network, Skipped, parse_shape
from convbench.models.onnx_model import read_onnx, suite_from_onnx
from convbench.models.optional import MissingExtra
from convbench.models.torch_model import read_factory, suite_from_module, trace_module

__all__ = ["Layer", "MissingExtra", "Network", "Skipped", "parse_shape", "read_factory",
           "read_onnx", "suite_from_module", "suite_from_onnx", "trace_module"]
