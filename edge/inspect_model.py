"""Per-layer summary of a QONNX model and what each target (FPGA, TFLite, OpenVINO) would accept."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from onnx import NodeProto
from qonnx.core.modelwrapper import ModelWrapper

from frontend.qonnx_io import QUANT_OPS, LoadedModel

COMPUTE_OPS = frozenset({"MatMul", "Gemm", "Conv"})
# Ops that only move or select values: a quantised tensor passed through them keeps its datatype.
PASS_THROUGH_OPS = frozenset({"Reshape", "Flatten", "Transpose", "MaxPool", "Identity", "Squeeze", "Unsqueeze", "Pad",
                              "Concat", "DepthToSpace", "Resize", "Upsample"})
# ops onnxruntime, OpenVINO and TensorRT run as int8 kernels between Q/DQ pairs (the rest run in float there)
QDQ_INT8_OPS = QUANT_OPS | COMPUTE_OPS | PASS_THROUGH_OPS | frozenset({
    "Add", "Mul", "Div", "Sub", "BatchNormalization", "Relu", "Clip", "GlobalAveragePool", "AveragePool",
    "Concat", "Softmax",
})

# ops a QDQ export keeps as they are without it being worth a note (shape arithmetic, constants)
QDQ_QUIET_OPS = frozenset({"Shape", "Gather", "Slice", "Constant", "Cast", "Trunc"})


@dataclass(frozen=True)
class QuantInfo:
    """The quantiser feeding a tensor: bit width, signedness, bipolar or not."""

    bits: int
    signed: bool
    bipolar: bool

    def label(self) -> str:
        if self.bipolar:
            return "bipolar"
        return f"{'int' if self.signed else 'uint'}{self.bits}"


@dataclass
class LayerInfo:
    """One compute layer (MatMul, Gemm, Conv) of the model."""

    name: str
    op: str
    input_shape: list[int]
    output_shape: list[int]
    weight_shape: list[int]
    weight_quant: str
    input_quant: str
    macs: int
    weight_bits: int


@dataclass
class TargetVerdict:
    """Whether a target can take the model, and every reason it cannot."""

    target: str
    supported: bool
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what a supporting target does differently (e.g. float ops)


@dataclass
class ModelSummary:
    path: str
    input_shape: list[int]
    output_shape: list[int]
    nodes: int
    layers: list[LayerInfo]
    targets: list[TargetVerdict]
    metadata: dict[str, str]
    normalisation: list[str]  # what the front end rewrote, one line per rewrite

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def total_weight_bits(self) -> int:
        return sum(layer.weight_bits for layer in self.layers)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["total_macs"], d["total_weight_bits"] = self.total_macs, self.total_weight_bits
        return d


def quant_of(model: ModelWrapper, tensor: str) -> QuantInfo | None:
    """The quantiser that produced `tensor`, looking through layout-only ops; None for a float tensor."""
    producer = model.find_producer(tensor)
    while producer is not None and (producer.op_type in PASS_THROUGH_OPS or producer.op_type == "Gather"):
        producer = model.find_producer(producer.input[0])
    if producer is None:
        return None
    if producer.op_type == "BipolarQuant":
        return QuantInfo(1, True, True)
    if producer.op_type in ("Quant", "Trunc"):  # Trunc: its output bit width is its last input
        bits = model.get_initializer(producer.input[3 if producer.op_type == "Quant" else -1])
        signed = next((a.i for a in producer.attribute if a.name == "signed"), 1)
        return QuantInfo(int(np.asarray(bits).item()) if bits is not None else 0, bool(signed), False)
    return None


def is_static(model: ModelWrapper, tensor: str) -> bool:
    """True when `tensor` is computed from initializers only (weights), False for anything fed by the input."""
    if model.get_initializer(tensor) is not None:
        return True
    producer = model.find_producer(tensor)
    if producer is None:
        return False
    return all(is_static(model, t) for t in producer.input if t)


def _macs(model: ModelWrapper, node: NodeProto, in_shape: list[int], w_shape: list[int],
          out_shape: list[int]) -> int:
    if node.op_type == "Conv":
        # every output element needs Cin/groups * kH * kW products: that is exactly the weight's inner size
        return int(np.prod(out_shape[1:]) * np.prod(w_shape[1:]))
    # MatMul/Gemm: every output element (per token, per head) is a dot product over the input's last axis
    inner = w_shape[0] if node.op_type == "Gemm" and w_shape and len(in_shape) < 2 else (in_shape or [1])[-1]
    return int(np.prod(out_shape[1:]) * inner)


def _layer(model: ModelWrapper, node: NodeProto) -> LayerInfo:
    w_name = node.input[1]
    w_shape = list(model.get_tensor_shape(w_name) or [])
    out_shape = list(model.get_tensor_shape(node.output[0]) or [])
    in_shape = list(model.get_tensor_shape(node.input[0]) or [])
    wq, aq = quant_of(model, w_name), quant_of(model, node.input[0])
    static = is_static(model, w_name)
    per_sample_out = [1, *out_shape[1:]]
    return LayerInfo(
        name=node.name,
        op=node.op_type,
        input_shape=in_shape,
        output_shape=out_shape,
        weight_shape=w_shape if static else [],
        weight_quant=(wq.label() if wq else "float") if static else f"act {wq.label() if wq else 'float'}",
        input_quant=aq.label() if aq else "float",
        macs=_macs(model, node, in_shape, w_shape, per_sample_out),
        weight_bits=int(np.prod(w_shape)) * (wq.bits if wq else 32) if static else 0,
    )


def _fpga_verdict(model: ModelWrapper, layers: list[LayerInfo]) -> TargetVerdict:
    """From the lowering's own rules (fpga/lower.py rules(), the kind modules' first): an op no rule takes is
    refused by `edge build` too."""
    from fpga.lower import lowered_ops

    taken = lowered_ops()
    reasons = [f"node '{n.name}': op {n.op_type} has no dataflow unit" for n in model.graph.node
               if n.op_type not in taken]
    for layer in layers:
        if layer.weight_quant == "float":
            reasons.append(f"node '{layer.name}': float weights; quantise them (a Quant node on the weights)")
        if layer.input_quant == "float":
            reasons.append(f"node '{layer.name}': float input activations; put a quantiser before it")
    return TargetVerdict("fpga", not reasons, reasons)


TFLITE_FLOAT_OPS = frozenset({"LayerNormalization", "Softmax"})


def _tflite_refusal(op: str) -> str | None:
    """Why the TFLite writer (which maps the integer IR kind by kind) cannot take `op`, or None when it can: from
    the lowering's rules and the writer's table (edge/export/tflite.py TFLITE), never a list of its own."""
    from edge.export.tflite import TFLITE
    from fpga.ir import Lookup
    from fpga.lower import CHAIN_OPS, LUT_OPS, lowered_ops, rules

    if op not in lowered_ops():
        return "has no integer IR kind (the int8 writer maps the IR)"
    kinds = {k for r in rules() if op in r.ops for k in r.kinds}
    if op in LUT_OPS - CHAIN_OPS:
        kinds.add(Lookup)
    refused = [TFLITE.entry(k) for k in sorted(kinds, key=lambda k: k.__name__) if not TFLITE.supports(k)]
    if kinds and len(refused) == len(kinds):
        return getattr(refused[0], "why", "no TFLite mapping")
    return None


def _int8_verdict(target: str, model: ModelWrapper, layers: list[LayerInfo]) -> TargetVerdict:
    reasons = [f"node '{n.name}': op {n.op_type}: {why}" for n in model.graph.node
               if (why := _tflite_refusal(n.op_type)) is not None]
    for layer in layers:
        for what, q in (("weights", layer.weight_quant), ("input", layer.input_quant)):
            if q in ("float", "act float"):
                reasons.append(f"node '{layer.name}': float {what}; int8 export needs quantised {what}")
    # the writer's float islands (edge/export/tflite.py): said here as the export report says them
    notes = [f"node '{n.name}': {n.op_type} runs in float32 onto its quantiser" for n in model.graph.node
             if n.op_type in TFLITE_FLOAT_OPS]
    notes += [f"node '{layer.name}': product of two activations, a float32 BATCH_MATMUL of exact integers"
              for layer in layers if layer.weight_quant.startswith("act ")]
    return TargetVerdict(target, not reasons, reasons, notes)


def _qdq_verdict(target: str, model: ModelWrapper, layers: list[LayerInfo]) -> TargetVerdict:
    """QDQ targets (ONNX, OpenVINO, TensorRT) take every op: those without an int8 kernel run in float between a
    DequantizeLinear and a QuantizeLinear, as the QONNX graph computes them."""
    notes = [f"node '{n.name}': {n.op_type} runs in float" for n in model.graph.node
             if n.op_type not in QDQ_INT8_OPS and n.op_type not in QDQ_QUIET_OPS]
    return TargetVerdict(target, True, [], notes)


def summarize(loaded: LoadedModel) -> ModelSummary:
    model = loaded.model
    layers = [_layer(model, n) for n in model.graph.node if n.op_type in COMPUTE_OPS]
    targets = [_fpga_verdict(model, layers), _int8_verdict("tflite", model, layers),
               _qdq_verdict("openvino", model, layers), _qdq_verdict("tensorrt", model, layers)]
    return ModelSummary(
        path=str(loaded.path),
        input_shape=list(loaded.input_shape),
        output_shape=list(loaded.output_shape),
        nodes=len(model.graph.node),
        layers=layers,
        targets=targets,
        metadata=loaded.metadata(),
        normalisation=list(loaded.rewrites),
    )
