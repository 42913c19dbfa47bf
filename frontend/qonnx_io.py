"""QONNX ingest shared by the FPGA and edge paths: load, check, clean up, infer, and run the golden model."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
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

from frontend.errors import EdgeError
from frontend.normalise import late_passes, normalise

QUANT_OPS = frozenset({"Quant", "BipolarQuant", "Trunc"})
# inputs each QONNX quantiser takes, and its attributes: (type, allowed values or None)
QUANT_ARITY = {"Quant": (4,), "BipolarQuant": (2,), "Trunc": (5, 6)}  # Trunc v1 / v2 (with an output scale)
ROUNDING_MODES = frozenset({"ROUND", "HALF_EVEN", "CEIL", "FLOOR", "UP", "DOWN", "HALF_UP", "HALF_DOWN",
                            "ROUND_TO_ZERO"})
QUANT_ATTRS: dict[str, dict[str, tuple[int, frozenset | None]]] = {
    "Quant": {"signed": (onnx.AttributeProto.INT, frozenset({0, 1})),
              "narrow": (onnx.AttributeProto.INT, frozenset({0, 1})),
              "rounding_mode": (onnx.AttributeProto.STRING, ROUNDING_MODES)},
    "Trunc": {"signed": (onnx.AttributeProto.INT, frozenset({0, 1})),
              "narrow": (onnx.AttributeProto.INT, frozenset({0, 1})),
              "rounding_mode": (onnx.AttributeProto.STRING, ROUNDING_MODES)},
    "BipolarQuant": {},
}
REQUIRED_QUANT_ATTRS = {"Quant": ("signed", "narrow", "rounding_mode"), "Trunc": ("rounding_mode",),
                        "BipolarQuant": ()}
# Ops the toolchain understands after cleanup. Anything else is rejected at load time, naming the node.
SUPPORTED_OPS = QUANT_OPS | frozenset({
    "MatMul", "Gemm", "Conv", "Add", "Sub", "Mul", "Div", "BatchNormalization", "Relu", "Clip",
    "HardTanh", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Reshape", "Transpose",
    "Identity", "Pad", "Concat", "Softmax", "Squeeze", "Unsqueeze", "ArgMax", "TopK", "DepthToSpace",
    "Resize", "Upsample",
})
# what quantised transformers add (Brevitas' export of a Hugging Face encoder): the golden model runs them and the
# QDQ ONNX export passes them through; the FPGA lowering and the int8 writers refuse them by name
TRANSFORMER_OPS = frozenset({
    "Gather", "GatherElements", "LayerNormalization", "Gelu", "Erf", "Tanh", "Sigmoid", "Where", "Equal", "Expand",
    "ConstantOfShape", "Shape", "Slice", "Cast", "Sqrt", "Pow", "ReduceMean", "Range", "Less", "Not",
})
SUPPORTED_OPS = SUPPORTED_OPS | TRANSFORMER_OPS
# integer model inputs: token ids, into an Embedding (Gather)
INDEX_INPUTS = (onnx.TensorProto.INT64, onnx.TensorProto.INT32)


@dataclass
class LoadedModel:
    """A cleaned, shape- and datatype-annotated QONNX model with its source path."""

    path: Path
    model: ModelWrapper
    rewrites: tuple[str, ...] = ()  # what normalisation did, one line per rewrite
    # copies of the model at fixed batch sizes (shape inference on a large graph takes seconds): shared by every
    # golden run of this model, each entry tied to the graph it was made from
    batched: dict[int, tuple[onnx.ModelProto, ModelWrapper]] = field(default_factory=dict, repr=False,
                                                                      compare=False)

    def at_batch(self, n: int) -> ModelWrapper:
        """The model with batch size n on its input, output and every inferred shape (made once per size)."""
        entry = self.batched.get(n)
        if entry is None or entry[0] is not self.model.model:
            entry = (self.model.model, with_batch(self.model, n))
            self.batched[n] = entry
        return entry[1]

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
    def input_dtype(self) -> type:
        """float32, or int64 for token ids."""
        elem = self.model.graph.input[0].type.tensor_type.elem_type
        return np.int64 if elem in INDEX_INPUTS else np.float32

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(self.model.get_tensor_shape(self.output_name))

    def metadata(self) -> dict[str, str]:
        return {p.key: p.value for p in self.model.model.metadata_props}


def vocabulary(loaded: LoadedModel) -> int:
    """How many token ids a model taking ids accepts: the fewest rows of a table its input indexes (Gather)."""
    rows = []
    for node in loaded.model.find_consumers(loaded.input_name) or []:
        if node.op_type == "Gather" and node.input[1] == loaded.input_name:
            shape = loaded.model.get_tensor_shape(node.input[0])
            if shape:
                rows.append(int(shape[0]))
    if not rows:
        raise EdgeError(f"{loaded.path}: the input takes integers but indexes no table (Gather); edge takes int64 "
                        "token ids into an embedding only")
    return min(rows)


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
    _load_external_data(path, proto)
    return proto


def _load_external_data(path: Path, proto: onnx.ModelProto) -> None:
    """Tensors stored beside the model (torch's dynamo exporter writes `model.onnx.data`), read only from files
    inside the model's own folder."""
    from onnx.external_data_helper import load_external_data_for_tensor, uses_external_data

    base = path.resolve().parent
    for tensor in onnx.external_data_helper._get_all_tensors(proto):
        if not uses_external_data(tensor):
            continue
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        target = (base / location).resolve()
        if not location or base not in target.parents or not target.is_file():
            raise EdgeError(f"{path}: tensor '{tensor.name}' refers to external data '{location}', which is not a "
                            "file beside the model; keep the .onnx and its data file in one folder")
        try:
            load_external_data_for_tensor(tensor, str(base))
        except (OSError, ValueError) as exc:
            raise EdgeError(f"{path}: external data of tensor '{tensor.name}' is unreadable ({exc})") from None
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT


def _check_graph(path: Path, proto: onnx.ModelProto) -> None:
    """Every node input exists, nothing is computed twice, the graph has no cycle, and each quantiser's constant
    parameters are valid (scale positive and finite, integer bit width >= 1): one line naming the node."""
    known = {i.name for i in proto.graph.initializer} | {i.name for i in proto.graph.input} | {""}
    produced: set[str] = set()
    for index, node in enumerate(proto.graph.node):
        for o in node.output:
            if o in produced or o in known - {""}:
                raise EdgeError(f"{path}: node '{node.name or f'#{index}'}' ({node.op_type}) writes '{o}', which "
                                "another node, initializer or input already provides; each tensor has one source")
            if o:
                produced.add(o)
    for index, node in enumerate(proto.graph.node):
        name = node.name or f"#{index}"
        for i in node.input:
            if i not in known and i not in produced:
                raise EdgeError(f"{path}: node '{name}' ({node.op_type}) reads '{i}', which no node, initializer or "
                                "input provides")
    order = _topological(proto)
    if order is None:
        raise EdgeError(f"{path}: the graph has a cycle; ONNX graphs must be acyclic")
    for out in proto.graph.output:
        if out.name not in produced and out.name not in known:
            raise EdgeError(f"{path}: graph output '{out.name}' is not computed by any node")
    inits = {i.name: i for i in proto.graph.initializer}
    for index, node in enumerate(proto.graph.node):
        if node.op_type not in ("Quant", "BipolarQuant", "Trunc"):
            continue
        name = node.name or f"#{index}"
        _check_quant_node(path, node, name)

        def const(k: int, node: onnx.NodeProto = node) -> np.ndarray | None:
            if len(node.input) <= k or node.input[k] not in inits:
                return None
            try:
                return onnx.numpy_helper.to_array(inits[node.input[k]]).astype(np.float64)
            except (ValueError, TypeError):
                return None

        scale = const(1)
        if scale is not None and (scale.size == 0 or not np.all(np.isfinite(scale)) or np.any(scale <= 0)):
            raise EdgeError(f"{path}: node '{name}' ({node.op_type}) has a scale that is not positive and finite; "
                            "re-export the model")
        bit_inputs = {"Quant": [3], "Trunc": [3, len(node.input) - 1]}.get(node.op_type, [])
        if node.op_type == "Trunc" and len(node.input) == 6:
            out_scale = const(4)
            if out_scale is not None and (not np.all(np.isfinite(out_scale)) or np.any(out_scale <= 0)):
                raise EdgeError(f"{path}: node '{name}' (Trunc) has an output scale that is not positive and "
                                "finite; re-export the model")
        for k in bit_inputs:
            bits = const(k)
            if bits is not None and (bits.size != 1 or not np.isfinite(bits).all() or bits.item() < 1
                                     or bits.item() != round(bits.item()) or bits.item() > 32):
                raise EdgeError(f"{path}: node '{name}' ({node.op_type}) has bit width {bits.reshape(-1)[:1]}; "
                                "expected a whole number from 1 to 32")
        zp = const(2)
        if zp is not None and not np.all(np.isfinite(zp)):
            raise EdgeError(f"{path}: node '{name}' ({node.op_type}) has a zero-point that is not finite")


def _check_quant_node(path: Path, node: onnx.NodeProto, name: str) -> None:
    """A QONNX quantiser has its inputs and well-typed attributes (qonnx itself fails deep inside otherwise)."""
    arity = QUANT_ARITY[node.op_type]
    if len(node.input) not in arity or len(node.output) != 1 or not all(node.input):
        raise EdgeError(f"{path}: node '{name}' ({node.op_type}) has {len(node.input)} inputs and "
                        f"{len(node.output)} outputs; QONNX defines {' or '.join(map(str, arity))} inputs and 1 "
                        "output")
    spec = QUANT_ATTRS[node.op_type]
    present = {a.name: a for a in node.attribute}
    for attr in REQUIRED_QUANT_ATTRS[node.op_type]:
        if attr not in present:
            raise EdgeError(f"{path}: node '{name}' ({node.op_type}) lacks the attribute '{attr}'; re-export the "
                            "model")
    for attr, a in present.items():
        if attr not in spec:
            raise EdgeError(f"{path}: node '{name}' ({node.op_type}) has an unknown attribute '{attr}'")
        kind, allowed = spec[attr]
        value = onnx.helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode(errors="replace").upper()
        if a.type != kind or (allowed is not None and value not in allowed):
            expected = "one of " + ", ".join(sorted(str(v) for v in allowed)) if allowed else "a valid value"
            raise EdgeError(f"{path}: node '{name}' ({node.op_type}) has {attr}={value!r}; expected {expected}")


def _topological(proto: onnx.ModelProto) -> list[int] | None:
    """Node indices in an order where producers come first, or None when the graph has a cycle."""
    producer = {o: i for i, n in enumerate(proto.graph.node) for o in n.output if o}
    deps = [{producer[i] for i in n.input if i in producer} - {idx} | ({idx} if any(producer.get(i) == idx
            for i in n.input) else set()) for idx, n in enumerate(proto.graph.node)]
    state = [0] * len(deps)
    order: list[int] = []
    for root in range(len(deps)):
        stack = [(root, iter(deps[root]))]
        if state[root]:
            continue
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                order.append(node)
                stack.pop()
            elif state[nxt] == 1:
                return None
            elif state[nxt] == 0:
                state[nxt] = 1
                stack.append((nxt, iter(deps[nxt])))
    return order


def _check_inputs(path: Path, proto: onnx.ModelProto) -> None:
    inits = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in inits]
    if len(inputs) != 1 or len(proto.graph.output) != 1:
        raise EdgeError(
            f"{path}: expected one graph input and one output, found {len(inputs)} and {len(proto.graph.output)}"
        )
    elem = inputs[0].type.tensor_type.elem_type
    if elem != onnx.TensorProto.FLOAT and elem not in INDEX_INPUTS:
        kind = onnx.TensorProto.DataType.Name(elem) if elem in onnx.TensorProto.DataType.values() else str(elem)
        raise EdgeError(f"{path}: input '{inputs[0].name}' has type {kind}; edge takes float32 model inputs (the "
                        "input quantiser makes the integers) or int64 token ids")
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
        if node.op_type == "ConvTranspose":
            name = node.name or f"#{index}"
            raise EdgeError(
                f"{path}: node '{name}' is a ConvTranspose whose output is not stride x its input, or with groups, "
                "dilation or unequal axes; only the sub-pixel form lowers (kernel - padding + output padding == "
                "stride, e.g. 2x2/2, 4x4/2 padding 1, 3x3/2 padding 1 output padding 1: a Conv and DepthToSpace); "
                "upsample with nn.Upsample + Conv or a PixelShuffle instead"
            )
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
    """Load a QONNX file, normalise it (frontend.normalise), reject what the toolchain cannot handle, and return the
    cleaned, annotated model with the list of rewrites."""
    path = Path(path)
    proto = _read(path)
    _check_inputs(path, proto)
    _check_graph(path, proto)
    if not any(n.op_type in QUANT_OPS for n in proto.graph.node):
        _check_ops(path, proto)  # names the first unsupported op of a float model, or says it is float
    try:
        model = ModelWrapper(proto)
        for node in model.graph.node:
            if node.op_type in QUANT_OPS:
                node.domain = "qonnx.custom_op.general"
        model, rewrites = normalise(model)
        _check_ops(path, model.model)
        model = cleanup(model)
        model, late = normalise(model, late_passes())
        if late:
            rewrites = [*rewrites, *late]
            model = cleanup(model)
        model = model.transform(InferShapes())
    except EdgeError:
        raise
    except Exception as exc:  # qonnx/onnx raise many types on malformed graphs
        raise EdgeError(f"{path}: shape inference failed ({type(exc).__name__}: {str(exc).splitlines()[0]})") \
            from None
    model = model.transform(InferDataTypes())
    _check_shapes(path, model)
    loaded = LoadedModel(path, model, tuple(rewrites))
    _check_executes(loaded)
    return loaded


def _check_shapes(path: Path, model: ModelWrapper) -> None:
    """Every tensor has a known shape (the golden model and the lowering need them all)."""
    for out in model.graph.output:
        shape = model.get_tensor_shape(out.name)
        if shape is None or any(d is None or d <= 0 for d in shape):
            raise EdgeError(f"{path}: output '{out.name}' has an unknown shape after inference")
    for node in model.graph.node:
        for t in node.output:
            shape = model.get_tensor_shape(t)
            if shape is None or any(not isinstance(d, int) or d <= 0 for d in shape):
                raise EdgeError(f"{path}: node '{node.name}' ({node.op_type}): the shape of its output '{t}' "
                                "cannot be inferred; check the model's input shape and this node's attributes")


def runtime_error(exc: Exception) -> str:
    """onnxruntime's long multi-line messages as one short line: the node it names and the reason."""
    text = " ".join(str(exc).split())
    node = re.search(r'In Node, \("([^"]*)", (\w+)', text) or re.search(r"Node \(([^)]*)\) Op \((\w+)\)", text)
    reason = re.search(r"(?:, Error |\] )(.*)$", text)
    msg = (reason.group(1) if reason else text)[:240]
    return f"node '{node.group(1)}' ({node.group(2)}): {msg}" if node else f"{type(exc).__name__}: {msg}"


def _check_executes(loaded: LoadedModel) -> None:
    """qonnx executes the model on one zero input and computes the declared output shape; what it cannot run is
    not a valid model, reported in one line instead of a failure halfway through a build."""
    x = np.zeros((1, *loaded.input_shape[1:]), loaded.input_dtype)
    with np.errstate(all="ignore"):
        y = GoldenModel(loaded, batch=1).run(x)
    declared = tuple(loaded.output_shape[1:])
    if len(y) != 1:
        raise EdgeError(f"{loaded.path}: one input sample gives {len(y)} output samples: a reshape mixes the batch "
                        "axis with the others; check the input shape")
    if tuple(y.shape[1:]) != declared:
        raise EdgeError(f"{loaded.path}: output '{loaded.output_name}' is declared with per-sample shape "
                        f"{list(declared)} but the graph computes {list(y.shape[1:])}; re-export the model")


def activation_elements(loaded: LoadedModel) -> int:
    """Elements of every non-constant tensor of one sample (input, intermediates, outputs): what executing one
    sample with its whole context holds, used to size verification batches."""
    graph = loaded.model.graph
    consts = {i.name for i in graph.initializer}
    total = 0
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        if vi.name in consts:
            continue
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        if dims and all(d > 0 for d in dims):
            total += int(np.prod(dims[1:], dtype=np.int64))
    return max(total, 1)


def with_batch(model: ModelWrapper, batch: int) -> ModelWrapper:
    """A copy of the model whose graph input and all inferred shapes use batch size `batch`."""
    proto = onnx.ModelProto()
    proto.CopyFrom(model.model)
    del proto.graph.value_info[:]
    for tensor in list(proto.graph.input) + list(proto.graph.output):
        dims = tensor.type.tensor_type.shape.dim
        if dims:
            dims[0].dim_value = batch
    if batch != 1:
        _batch_concat_constants(proto, batch)
    return ModelWrapper(proto).transform(InferShapes())


def _batch_concat_constants(proto: onnx.ModelProto, batch: int) -> None:
    """A constant of batch 1 concatenated to activations along another axis (a class token, its batch Expand folded
    at export) is repeated to `batch`: Concat does not broadcast, every sample gets the same rows."""
    inits = {t.name: t for t in proto.graph.initializer}
    producers = {o: n for n in proto.graph.node for o in n.output}
    readers: dict[str, int] = {}
    for n in proto.graph.node:
        for i in n.input:
            readers[i] = readers.get(i, 0) + 1
    for node in proto.graph.node:
        if node.op_type != "Concat" or all(i in inits for i in node.input):
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        for k, name in enumerate(node.input):
            # the constant itself, or the initializer a per-tensor quantiser or dequantiser (QDQ form) that only this
            # Concat reads takes
            owner, slot = node, k
            q = producers.get(name)
            if name not in inits and q is not None and q.op_type in ("Quant", "BipolarQuant", "DequantizeLinear") \
                    and q.input[0] in inits \
                    and readers.get(name) == 1 and all(p in inits and onnx.numpy_helper.to_array(inits[p]).size == 1
                                                   for p in q.input[1:]):
                owner, slot, name = q, 0, q.input[0]
            if name not in inits:
                continue
            value = onnx.numpy_helper.to_array(inits[name])
            if value.ndim < 2 or value.shape[0] != 1 or axis % value.ndim == 0:
                continue
            copy = onnx.numpy_helper.from_array(np.repeat(value, batch, axis=0), f"{name}_batch{batch}_{node.name}")
            proto.graph.initializer.append(copy)
            owner.input[slot] = copy.name


class GoldenModel:
    """The golden reference: qonnx's `execute_onnx` on the QONNX graph, run in batches."""

    def __init__(self, loaded: LoadedModel, batch: int = 256) -> None:
        self.loaded = loaded
        self.batch = batch

    def run(self, x: np.ndarray) -> np.ndarray:
        """Outputs for a batch of inputs in the model's own input layout (float32, or int64 token ids)."""
        x = np.asarray(x, dtype=self.loaded.input_dtype)
        expected = self.loaded.input_shape[1:]
        if tuple(x.shape[1:]) != tuple(expected):
            raise EdgeError(f"input batch has per-sample shape {x.shape[1:]}, the model expects {expected}")
        outs = []
        for start in range(0, len(x), self.batch):
            chunk = x[start : start + self.batch]
            outs.append(self._execute(chunk, full=False)[self.loaded.output_name])
        return np.concatenate(outs, axis=0)

    def _execute(self, x: np.ndarray, full: bool) -> dict[str, np.ndarray]:
        try:
            model = self.loaded.at_batch(len(x))
            return execute_onnx(model, {self.loaded.input_name: x}, return_full_exec_context=full)
        except EdgeError:
            raise
        except Exception as exc:  # onnxruntime and qonnx raise many types on graphs they cannot run
            raise EdgeError(f"{self.loaded.path}: the golden model (qonnx) cannot execute it: "
                            f"{runtime_error(exc)}") from None

    def run_all(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every intermediate tensor for one batch, by tensor name (for per-layer comparisons)."""
        return self._execute(np.asarray(x, self.loaded.input_dtype), full=True)
