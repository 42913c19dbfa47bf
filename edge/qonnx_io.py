"""QONNX ingest shared by the FPGA and edge paths: load, check, clean up, infer, and run the golden model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.fold_constants import FoldConstants
from qonnx.transformation.general import (
    GiveReadableTensorNames,
    GiveUniqueNodeNames,
    GiveUniqueParameterTensors,
    RemoveStaticGraphInputs,
    RemoveUnusedTensors,
)
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.transformation.quant_constant_folding import FoldTransposeIntoQuantInit

from edge.errors import EdgeError

QUANT_OPS = frozenset({"Quant", "BipolarQuant", "Trunc"})
# Ops the toolchain understands after cleanup. Anything else is rejected at load time, naming the node.
SUPPORTED_OPS = QUANT_OPS | frozenset({
    "MatMul", "Gemm", "Conv", "Add", "Sub", "Mul", "Div", "BatchNormalization", "Relu", "Clip",
    "HardTanh", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Reshape", "Transpose",
    "Identity", "Pad", "Concat", "Softmax", "Squeeze", "Unsqueeze", "ArgMax", "TopK",
})


@dataclass
class LoadedModel:
    """A cleaned, shape- and datatype-annotated QONNX model with its source path."""

    path: Path
    model: ModelWrapper

    @property
    def input_name(self) -> str:
        return self.model.graph.input[0].name

    @property
    def output_name(self) -> str:
        return self.model.graph.output[0].name

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.model.get_tensor_shape(self.input_name))

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(self.model.get_tensor_shape(self.output_name))

    def metadata(self) -> dict[str, str]:
        return {p.key: p.value for p in self.model.model.metadata_props}


def _read(path: Path) -> onnx.ModelProto:
    if not path.exists():
        raise EdgeError(f"{path}: no such file")
    if not path.is_file():
        raise EdgeError(f"{path}: not a file")
    data = path.read_bytes()
    if not data:
        raise EdgeError(f"{path}: empty file; expected an ONNX model")
    try:
        proto = onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise EdgeError(f"{path}: not an ONNX model or truncated (protobuf parse failed: {exc})") from None
    if not proto.graph.node:
        raise EdgeError(f"{path}: not an ONNX model (the parsed graph has no nodes)")
    return proto


def _check_inputs(path: Path, proto: onnx.ModelProto) -> None:
    inits = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in inits]
    if len(inputs) != 1 or len(proto.graph.output) != 1:
        raise EdgeError(
            f"{path}: expected one graph input and one output, found {len(inputs)} and {len(proto.graph.output)}"
        )
    dims = inputs[0].type.tensor_type.shape.dim
    if not dims:
        raise EdgeError(f"{path}: input '{inputs[0].name}' has no shape; export with a fixed input shape")
    for axis, d in enumerate(dims):
        if d.dim_param or d.dim_value <= 0:
            if axis == 0:
                d.Clear()
                d.dim_value = 1  # a dynamic batch is fine: the golden model runs one batch size at a time
                continue
            label = d.dim_param or "?"
            raise EdgeError(
                f"{path}: input '{inputs[0].name}' has a dynamic dimension '{label}' at axis {axis}; "
                "export with a fixed input shape"
            )


def _check_ops(path: Path, proto: onnx.ModelProto) -> None:
    """Checked on the graph as the user wrote it, so that errors carry their node names (cleanup renames)."""
    for index, node in enumerate(proto.graph.node):
        if node.op_type not in SUPPORTED_OPS:
            name = node.name or f"#{index}"
            raise EdgeError(
                f"{path}: node '{name}' has unsupported op {node.op_type}; "
                "`edge inspect --help` lists the ops edge handles"
            )
    if not any(n.op_type in QUANT_OPS for n in proto.graph.node):
        raise EdgeError(
            f"{path}: no Quant/BipolarQuant nodes: this is a float model; "
            "train it with Brevitas (`edge train`) and export QONNX"
        )


def cleanup(model: ModelWrapper) -> ModelWrapper:
    """qonnx's cleanup (fold constants except quantisers, drop unused tensors, readable tensor names), but node
    names are kept when they are unique, so that errors name nodes as the user's tools show them."""
    for node in model.graph.node:
        if node.op_type in QUANT_OPS:
            node.domain = "qonnx.custom_op.general"
    for t in (InferShapes(), GiveUniqueParameterTensors(),
              FoldConstants(exclude_op_types=["Quant", "BipolarQuant", "QuantizeLinear", "DequantizeLinear"]),
              FoldTransposeIntoQuantInit(), RemoveUnusedTensors(), RemoveStaticGraphInputs()):
        model = model.transform(t)
    names = [n.name for n in model.graph.node]
    if not all(names) or len(set(names)) != len(names):
        model = model.transform(GiveUniqueNodeNames())
    return model.transform(GiveReadableTensorNames())


def load_model(path: str | Path) -> LoadedModel:
    """Load a QONNX file, reject what the toolchain cannot handle, and return the cleaned, annotated model."""
    path = Path(path)
    proto = _read(path)
    _check_inputs(path, proto)
    _check_ops(path, proto)
    try:
        model = cleanup(ModelWrapper(proto))
        model = model.transform(InferShapes())
    except Exception as exc:  # qonnx/onnx raise many types on malformed graphs
        raise EdgeError(f"{path}: shape inference failed ({type(exc).__name__}: {exc})") from None
    model = model.transform(InferDataTypes())
    for out in model.graph.output:
        shape = model.get_tensor_shape(out.name)
        if shape is None or any(d is None or d <= 0 for d in shape):
            raise EdgeError(f"{path}: output '{out.name}' has an unknown shape after inference")
    return LoadedModel(path, model)


def with_batch(model: ModelWrapper, batch: int) -> ModelWrapper:
    """A copy of the model whose graph input and all inferred shapes use batch size `batch`."""
    proto = onnx.ModelProto()
    proto.CopyFrom(model.model)
    del proto.graph.value_info[:]
    for tensor in list(proto.graph.input) + list(proto.graph.output):
        dims = tensor.type.tensor_type.shape.dim
        if dims:
            dims[0].dim_value = batch
    return ModelWrapper(proto).transform(InferShapes())


class GoldenModel:
    """The golden reference: qonnx's `execute_onnx` on the QONNX graph, run in batches."""

    def __init__(self, loaded: LoadedModel, batch: int = 256) -> None:
        self.loaded = loaded
        self.batch = batch
        self._by_batch: dict[int, ModelWrapper] = {}

    def _model(self, n: int) -> ModelWrapper:
        if n not in self._by_batch:
            self._by_batch[n] = with_batch(self.loaded.model, n)
        return self._by_batch[n]

    def run(self, x: np.ndarray) -> np.ndarray:
        """Outputs for a batch of inputs in the model's own input layout (float32)."""
        x = np.asarray(x, dtype=np.float32)
        expected = self.loaded.input_shape[1:]
        if tuple(x.shape[1:]) != tuple(expected):
            raise EdgeError(f"input batch has per-sample shape {x.shape[1:]}, the model expects {expected}")
        outs = []
        for start in range(0, len(x), self.batch):
            chunk = x[start : start + self.batch]
            model = self._model(len(chunk))
            ctx = execute_onnx(model, {self.loaded.input_name: chunk})
            outs.append(ctx[self.loaded.output_name])
        return np.concatenate(outs, axis=0)

    def run_all(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every intermediate tensor for one batch, by tensor name (for per-layer comparisons)."""
        model = self._model(len(x))
        return execute_onnx(model, {self.loaded.input_name: np.asarray(x, np.float32)}, return_full_exec_context=True)
