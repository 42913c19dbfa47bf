"""A small builder for TFLite flatbuffers on LiteRT's generated schema (no TensorFlow involved).

Tensors, constant buffers, operator codes and operators are appended in order; `serialize` packs one subgraph
with a `serving_default` signature. Batch is dynamic: every activation tensor has shape_signature [-1, ...].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

TFLITE_TYPES = {np.dtype(np.float32): schema.TensorType.FLOAT32, np.dtype(np.int8): schema.TensorType.INT8,
                np.dtype(np.int32): schema.TensorType.INT32, np.dtype(np.bool_): schema.TensorType.BOOL}
# The lowest kernel version that covers int8 (and per-channel) use of each operator.
OP_VERSIONS = {"CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 4, "MAX_POOL_2D": 2, "QUANTIZE": 2,
               "DEQUANTIZE": 2, "RESHAPE": 1, "CONCATENATION": 2, "MINIMUM": 2, "MAXIMUM": 2, "PAD": 2, "PADV2": 2,
               "GATHER": 2, "DEPTH_TO_SPACE": 2, "RESIZE_NEAREST_NEIGHBOR": 2,
               "MUL": 1, "ADD": 1, "SUB": 1, "DIV": 1, "GREATER_EQUAL": 1, "SELECT_V2": 1,
               "CAST": 1, "MEAN": 1, "RSQRT": 1, "SOFTMAX": 1, "BATCH_MATMUL": 1, "TRANSPOSE": 1, "ROUND": 1,
               "SHAPE": 1, "SLICE": 1, "BROADCAST_TO": 2}


@dataclass(frozen=True)
class Quant:
    """Affine quantisation of a tensor: real = scale * (q - zero_point); per-axis when scale has > 1 entry."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int = 0
    value_range: tuple[int, int] | None = None  # integer values an activation holds (not written to TFLite)


@dataclass
class TfliteModelBuilder:
    tensors: list[Any] = field(default_factory=list)
    buffers: list[Any] = field(default_factory=lambda: [schema.BufferT()])  # buffer 0: the empty sentinel
    opcodes: dict[str, int] = field(default_factory=dict)
    operators: list[Any] = field(default_factory=list)
    names: dict[str, int] = field(default_factory=dict)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    # LiteRT runs these int8 ops in XNNPACK, which requantises in float32 (edge.export.requant.fp32_levels)
    xnnpack_requant: bool = True
    # float32 / int32 islands (LayerNorm, Softmax, products of two activations, tables) are allowed
    float_islands: bool = True
    # FULLY_CONNECTED with keepNumDims over (tokens, features) rows, RESHAPE between stream shapes
    rows_kept = True

    def tensor(self, name: str, shape: tuple[int, ...], dtype: type, quant: Quant | None = None,
               data: np.ndarray | None = None) -> int:
        """Add a tensor (a constant when `data` is given); returns its index."""
        if name in self.names:
            raise ValueError(f"duplicate tensor name {name}")
        t = schema.TensorT()
        t.name = name
        t.shape = list(shape)
        t.type = TFLITE_TYPES[np.dtype(dtype)]
        t.buffer = 0
        if data is None:
            if len(shape) > 1:  # activations: any batch; shape vectors (SHAPE, SLICE) keep their length
                t.shapeSignature = [-1, *shape[1:]]
        else:
            buf = schema.BufferT()
            buf.data = np.frombuffer(np.ascontiguousarray(data, dtype=dtype).tobytes(), np.uint8)
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        if quant is not None:
            q = schema.QuantizationParametersT()
            q.scale = [float(s) for s in quant.scale]
            q.zeroPoint = [int(z) for z in quant.zero_point]
            q.quantizedDimension = quant.axis
            t.quantization = q
        self.tensors.append(t)
        self.names[name] = len(self.tensors) - 1
        return self.names[name]

    def const(self, name: str, data: np.ndarray, quant: Quant | None = None) -> int:
        return self.tensor(name, tuple(data.shape), data.dtype.type, quant, data)

    def op(self, kind: str, inputs: list[int], outputs: list[int], options: Any = None) -> None:
        if kind not in self.opcodes:
            self.opcodes[kind] = len(self.opcodes)
        o = schema.OperatorT()
        o.opcodeIndex = self.opcodes[kind]
        o.inputs, o.outputs = list(inputs), list(outputs)
        if options is not None:
            kind_name = type(options).__name__[:-1]  # Conv2DOptionsT -> Conv2DOptions
            o.builtinOptionsType = getattr(schema.BuiltinOptions, kind_name)
            o.builtinOptions = options
        self.operators.append(o)

    def serialize(self, description: str) -> bytes:
        sub = schema.SubGraphT()
        sub.tensors, sub.operators = self.tensors, self.operators
        sub.inputs, sub.outputs = self.inputs, self.outputs
        sub.name = "main"
        sig = schema.SignatureDefT()
        sig.signatureKey = "serving_default"
        sig.subgraphIndex = 0
        sig.inputs = [self._tensor_map(i) for i in self.inputs]
        sig.outputs = [self._tensor_map(i) for i in self.outputs]
        model = schema.ModelT()
        model.version = 3
        model.description = description
        model.subgraphs = [sub]
        model.buffers = self.buffers
        model.signatureDefs = [sig]
        codes = [None] * len(self.opcodes)
        for kind, idx in self.opcodes.items():
            code = schema.OperatorCodeT()
            code.builtinCode = getattr(schema.BuiltinOperator, kind)
            code.deprecatedBuiltinCode = min(code.builtinCode, 127)
            code.version = OP_VERSIONS[kind]
            codes[idx] = code
        model.operatorCodes = codes
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())

    def _tensor_map(self, index: int) -> Any:
        m = schema.TensorMapT()
        m.name = self.tensors[index].name
        m.tensorIndex = index
        return m


def options(kind: str, **values: Any) -> Any:
    """A builtin options object, e.g. options('Conv2DOptions', padding=..., strideW=1)."""
    obj = getattr(schema, f"{kind}T")()
    for k, v in values.items():
        if not hasattr(obj, k):
            raise AttributeError(f"{kind} has no field {k}")
        setattr(obj, k, v)
    return obj


PADDING_SAME = schema.Padding.SAME
PADDING_VALID = schema.Padding.VALID
ACT_NONE = schema.ActivationFunctionType.NONE
ACT_RELU = schema.ActivationFunctionType.RELU
