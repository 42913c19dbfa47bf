"""Where a float model comes from: the user's `FILE.py:FACTORY` (plain PyTorch, torchvision, Hugging Face) or a
float `.onnx` converted to PyTorch with onnx2torch. Hugging Face outputs are reduced to their `.logits`."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edge.usermodel import call_factory, load_state
from frontend.errors import EdgeError


class Logits(nn.Module):
    """Wraps a model whose forward returns an output object with `.logits` (Hugging Face) or a tuple: the logits."""

    def __init__(self, model: nn.Module, field: str | None) -> None:
        super().__init__()
        self.model = model
        self.field = field  # "logits", or None for the first element of a tuple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        return getattr(out, self.field) if self.field else out[0]


def as_logits(model: nn.Module, sample: torch.Tensor) -> nn.Module:
    """`model` itself when it returns a tensor, else wrapped in `Logits` (decided once, here: tracing cannot)."""
    with torch.no_grad():
        out = model(sample)
    if isinstance(out, torch.Tensor):
        return model
    if isinstance(getattr(out, "logits", None), torch.Tensor):
        return Logits(model, "logits").eval()
    if isinstance(out, tuple | list) and out and isinstance(out[0], torch.Tensor):
        return Logits(model, None).eval()
    raise EdgeError(f"the model returned {type(out).__name__}; edge quantize needs a tensor of outputs (or an "
                    "object with .logits)")


def torchvision_importable() -> None:
    """Make torchvision's pure-Python models importable when its C extension does not match this torch build (the
    PyPI torchvision wheel beside a CPU-only torch): its custom-op registrations are skipped, nothing else changes.
    Classification models use none of those ops (nms, roi_align, deform_conv2d)."""
    try:
        import torchvision  # noqa: F401
        return
    except ImportError:
        return
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
    for name in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
        del sys.modules[name]
    import torch.library as library

    saved = library.register_fake, library.register_autograd
    library.register_fake = lambda *a, **k: (lambda fn: fn)
    library.register_autograd = lambda *a, **k: None
    try:
        import torchvision  # noqa: F401
    finally:
        library.register_fake, library.register_autograd = saved


def plain_layers(model: nn.Module) -> nn.Module:
    """Brevitas layers with every quantiser off (a float baseline written with Brevitas, e.g. `weight_quant=None`)
    as the torch layers they compute, so that PTQ maps them like any float layer (in place)."""
    import brevitas.nn as qnn

    proxies = ("weight_quant", "bias_quant", "input_quant", "output_quant")
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if not isinstance(child, qnn.QuantConv1d | qnn.QuantConv2d | qnn.QuantLinear) or any(
                    getattr(getattr(child, p, None), "is_quant_enabled", False) for p in proxies):
                continue
            if isinstance(child, qnn.QuantLinear):
                plain: nn.Module = nn.Linear(child.in_features, child.out_features, bias=child.bias is not None)
            else:
                cls = nn.Conv2d if isinstance(child, qnn.QuantConv2d) else nn.Conv1d
                plain = cls(child.in_channels, child.out_channels, child.kernel_size, child.stride, child.padding,
                            child.dilation, child.groups, bias=child.bias is not None, padding_mode=child.padding_mode)
            plain.load_state_dict({k: v for k, v in child.state_dict().items() if k in ("weight", "bias")})
            setattr(parent, name, plain.train(child.training))
    return model


def _onnx_model(path: Path) -> nn.Module:
    """A float ONNX model as a torch.fx GraphModule (onnx2torch), or a one-line error naming the first op it lacks."""
    import onnx

    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - the user's file
        raise EdgeError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None
    quant = [n for n in proto.graph.node if n.op_type in ("Quant", "BipolarQuant", "Trunc", "QuantizeLinear")]
    if quant:
        raise EdgeError(f"{path}: already quantised (node '{quant[0].name}' is {quant[0].op_type}); pass it to "
                        "edge build / edge export as it is")
    try:
        from onnx2torch import convert
        from onnx2torch.node_converters.registry import get_converter
    except ImportError:
        raise EdgeError("an .onnx float model needs onnx2torch: pip install 'edge-toolchain[onnx]'") from None
    versions = {o.domain or "": o.version for o in proto.opset_import}
    for node in proto.graph.node:
        try:
            get_converter(node.op_type, versions.get(node.domain or "", 0), node.domain or "")
        except NotImplementedError:
            raise EdgeError(f"{path}: node '{node.name}' ({node.op_type}, opset {versions.get(node.domain or '')}) "
                            "has no PyTorch converter (onnx2torch); export the model from PyTorch and pass "
                            "FILE.py:FACTORY instead") from None
    try:
        return convert(proto)
    except Exception as exc:  # noqa: BLE001 - converter failures are about the user's model
        raise EdgeError(f"{path}: converting to PyTorch failed: {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}") from None


def load_float_model(spec: str, checkpoint: Path | None = None) -> nn.Module:
    """The float model named by `spec` (FILE.py:FACTORY or a float .onnx), weights from `checkpoint`, eval mode."""
    torchvision_importable()
    if spec.endswith(".onnx") and ":" not in Path(spec).name:
        path = Path(spec)
        if not path.is_file():
            raise EdgeError(f"{path}: no such ONNX file")
        model = _onnx_model(path)
    elif ":" in spec:
        model = call_factory(spec)
    else:
        raise EdgeError(f"{spec}: expected FILE.py:FACTORY (a function returning a float torch.nn.Module) or a "
                        "float .onnx model")
    if checkpoint is not None:
        load_state(model, checkpoint, "checkpoint")
    return model.eval()


def load_array(path: Path, what: str) -> np.ndarray:
    """A .npy file of real inputs or labels (a one-line error for anything else)."""
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise EdgeError(f"{path}: no such {what} file") from None
    except Exception as exc:  # noqa: BLE001
        raise EdgeError(f"{path}: not a .npy array ({type(exc).__name__}); save it with numpy.save") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiub" or arr.ndim < 1 or len(arr) == 0:
        raise EdgeError(f"{path}: {what} must be a non-empty numeric array, batch first (got dtype {arr.dtype}, "
                        f"shape {arr.shape})")
    return arr


def as_model_input(x: np.ndarray) -> torch.Tensor:
    """Float data as float32, integer data (token ids) as int64."""
    if x.dtype.kind == "f":
        return torch.from_numpy(np.ascontiguousarray(x, np.float32))
    return torch.from_numpy(np.ascontiguousarray(x, np.int64))
