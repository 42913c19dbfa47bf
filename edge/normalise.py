"""Front-end normalisation: small exact rewrites, one idiom each, run on a loaded QONNX graph before its ops are
checked, so that errors name only what is truly unsupported.

Every pass follows qonnx's transformation contract, `apply(model) -> (model, changed)`, and records one line per
rewrite in `notes` (shown by `edge inspect`). Passes only make rewrites that compute the same function for every
batch size: the result is the golden reference.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import onnx
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.fold_constants import FoldConstants
from qonnx.transformation.infer_shapes import InferShapes

QUANTISER_OPS = ("Quant", "BipolarQuant", "Trunc", "QuantizeLinear", "DequantizeLinear")
IDENTITY_OPS = frozenset({"Identity", "Dropout"})


class Pass(Protocol):
    notes: list[str]

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]: ...


def _label(node: onnx.NodeProto) -> str:
    return f"'{node.name}' ({node.op_type})" if node.name else node.op_type


class FoldShapeOps:
    """Shape of a tensor whose per-sample shape is static becomes a constant (dynamic-batch exports compute
    Reshape targets through Shape -> Gather -> Unsqueeze -> Concat); BatchFreeReshape then frees the batch axis."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        changed = False
        for node in list(model.graph.node):
            if node.op_type != "Shape":
                continue
            shape = model.get_tensor_shape(node.input[0])
            if shape is None or any(not isinstance(d, int) or d <= 0 for d in shape):
                continue
            start = _attr_int(node, "start", 0)
            end = _attr_int(node, "end", len(shape))
            value = np.asarray(shape, np.int64)[start:end]
            model.set_initializer(node.output[0], value)
            model.graph.node.remove(node)
            self.notes.append(f"folded Shape {_label(node)} of '{node.input[0]}' to {value.tolist()}")
            changed = True
        return model, changed


class FoldConstantSubgraphs:
    """Every node whose inputs are all constants is evaluated once (TensorNorm's Pow/Sqrt/Div/Sub, the Gather/
    Unsqueeze/Concat chains of Reshape targets); quantisers are kept, they are the model."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        before = [(n.name, n.op_type) for n in model.graph.node]
        model = model.transform(FoldConstants(exclude_op_types=list(QUANTISER_OPS)))
        after = {n.name for n in model.graph.node}
        folded = [f"'{name}' ({op})" if name else op for name, op in before if name not in after]
        if folded:
            self.notes.append(f"folded {len(folded)} constant node(s): {', '.join(folded[:6])}"
                              + (" ..." if len(folded) > 6 else ""))
        return model, bool(folded)


class BatchFreeReshape:
    """A Reshape whose constant target starts with the batch size it was traced at (`x.reshape(x.shape[0], -1)`
    exported at batch 1 gives [1, 256]) gets -1 there and explicit sizes elsewhere, so any batch size works."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        changed = False
        batch = _graph_batch(model)
        for node in model.graph.node:
            if node.op_type != "Reshape" or len(node.input) < 2:
                continue
            target = model.get_initializer(node.input[1])
            in_shape = model.get_tensor_shape(node.input[0])
            out_shape = model.get_tensor_shape(node.output[0])
            if target is None or in_shape is None or out_shape is None or target.ndim != 1 or len(target) < 1:
                continue
            if int(target[0]) == -1 or int(target[0]) != batch or in_shape[0] != batch or out_shape[0] != batch:
                continue
            new = np.asarray([-1, *[int(d) for d in out_shape[1:]]], np.int64)
            name = f"{node.input[1]}_batch_free"
            model.set_initializer(name, new)
            node.input[1] = name
            self.notes.append(f"Reshape {_label(node)}: target {target.tolist()} -> {new.tolist()} (any batch size)")
            changed = True
        return model, changed


class RemoveIdentityOps:
    """Identity, Dropout (inference) and Reshape/Flatten that keep the shape are dropped; consumers read the input."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        outputs = {o.name for o in model.graph.output}
        for node in list(model.graph.node):
            if not self._is_identity(model, node) or node.output[0] in outputs:
                continue
            if any(o and model.find_consumers(o) for o in node.output[1:]):
                continue  # a Dropout mask that something reads
            for consumer in model.find_consumers(node.output[0]) or []:
                for i, name in enumerate(consumer.input):
                    if name == node.output[0]:
                        consumer.input[i] = node.input[0]
            model.graph.node.remove(node)
            self.notes.append(f"removed {_label(node)} (no effect at inference)")
            return model, True  # one at a time: consumers' lists changed
        return model, False

    @staticmethod
    def _is_identity(model: ModelWrapper, node: onnx.NodeProto) -> bool:
        if node.op_type in IDENTITY_OPS:
            return True
        if node.op_type in ("Reshape", "Flatten", "Squeeze", "Unsqueeze"):
            a, b = model.get_tensor_shape(node.input[0]), model.get_tensor_shape(node.output[0])
            return a is not None and b is not None and list(a) == list(b)
        return False


class InferShapesPass:
    """Shapes for every tensor (needed by the passes that read them); reports no rewrite."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        return model.transform(InferShapes()), False


def default_passes() -> list[Pass]:
    return [InferShapesPass(), FoldShapeOps(), FoldConstantSubgraphs(), BatchFreeReshape(), RemoveIdentityOps()]


def normalise(model: ModelWrapper, passes: list[Pass] | None = None, rounds: int = 8) -> tuple[ModelWrapper, list[str]]:
    """Run the passes until none changes the graph (at most `rounds` times); returns the model and the rewrites."""
    passes = passes if passes is not None else default_passes()
    for _ in range(rounds):
        changed = False
        for p in passes:
            model, c = p.apply(model)
            changed |= c
        if not changed:
            break
    return model, [note for p in passes for note in p.notes]


def _attr_int(node: onnx.NodeProto, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(helper.get_attribute_value(a))
    return default


def _graph_batch(model: ModelWrapper) -> int:
    shape = model.get_tensor_shape(model.graph.input[0].name)
    return int(shape[0]) if shape else 1
