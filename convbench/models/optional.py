"""The optional libraries a model is read with, imported only when one is read: torchvision
(`pip install convbench[models]`) and onnx (`convbench[onnx]`). A missing one raises
MissingExtra, which names the extra to install.

torchvision 0.28.0, the release that matches convbench's torch pin, ships on PyPI built for
CUDA torch only. Beside the CPU torch its compiled operators (`_C.so`) fail to load, and its
`_meta_registrations.py` then stops the import with "operator torchvision::nms does not exist":
it registers fake kernels for torchvision::nms and torchvision::qnms whether or not the library
that defines them loaded. When, and only when, the import fails for that reason,
`import_torchvision` defines those two schemas (no kernels) and imports again: the model
definitions are pure Python and load; the detection ops (nms, roi_align, ...) stay unusable.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

# The torchvision::nms and torchvision::qnms schemas, when convbench had to define them; kept
# alive here, since the definitions go with the Library object.
_torchvision_schemas: list[Any] = []
_MISSING_NMS = "operator torchvision::nms does not exist"


class MissingExtra(ImportError, ValueError):
    """An optional library is not installed; the message names the extra that installs it. A
    ValueError too, so the command line answers it as bad input (exit 2, one line)."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """`import module`, or MissingExtra naming `pip install 'convbench[extra]'`."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name != module.partition(".")[0]:
            raise
        raise MissingExtra(f"{purpose} needs {module}, which is not installed: pip install "
                           f"'convbench[{extra}]'", name=module) from None


def import_onnx() -> ModuleType:
    """onnx, or MissingExtra naming convbench[onnx]."""
    return require("onnx", "onnx", "reading an ONNX file")


def import_torchvision() -> ModuleType:
    """torchvision, or MissingExtra naming convbench[models]; beside a CPU torch, with the
    nms/qnms schemas defined first when its own import fails for their lack (module doc)."""
    try:
        return require("torchvision", "models", "a torchvision model")
    except RuntimeError as error:
        if _MISSING_NMS not in str(error):
            raise
    _define_detection_schemas()
    return require("torchvision", "models", "a torchvision model")


def _define_detection_schemas() -> None:
    """Define torchvision::nms and ::qnms (schemas only) and forget the half-imported
    torchvision, so that importing it again starts over."""
    import torch

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    if _torchvision_schemas:
        return
    library = torch.library.Library("torchvision", "DEF")
    for op in ("nms", "qnms"):
        library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _torchvision_schemas.append(library)
