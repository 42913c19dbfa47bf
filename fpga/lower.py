"""Lower a QONNX model to the integer dataflow IR.

Walks the graph in order and keeps, for every QONNX tensor that is integer-valued, a `Value`: the IR stream that
carries its integers, their datatype, the float scale (onnx = int * scale) and the layout. Accumulating ops
(MatMul, Gemm, Conv, GlobalAveragePool, residual Add) become IR nodes; the element-wise ops after them up to the
next quantiser become thresholds, derived from the exact QONNX function; a graph output without a quantiser
becomes a host-side affine step. Anything else stops with an error naming the node.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import onnx
from onnx import NodeProto, helper, numpy_helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.custom_op.general.quant import quant
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.basic import get_by_name

from fpga.datatypes import BIPOLAR, IntType, quant_type, smallest_type
from fpga.ir import (
    AddConstant,
    AddStreams,
    ConcatConstant,
    DataflowGraph,
    DuplicateStreams,
    GlobalAccPool,
    HostOp,
    InputQuant,
    LabelSelect,
    LayerNorm,
    Layout,
    Lookup,
    MatrixVectorUnit,
    MaxPool,
    Node,
    OutputAffine,
    Padding,
    Probe,
    SlidingWindow,
    Softmax,
    StreamingConcat,
    StreamMatMul,
    TensorInfo,
    Thresholding,
    Thresholds,
    VectorVectorUnit,
)
from fpga.kinds import kind_modules
from fpga.thresholds import derive_thresholds
from frontend.errors import EdgeError
from frontend.qonnx_io import LoadedModel
from frontend.shapes import reshape_batch_axis, transpose_batch_axis

QUANTISERS = ("Quant", "BipolarQuant")
# Element-wise ops allowed between an accumulator and the next quantiser: they become thresholds.
CHAIN_OPS = frozenset({"Add", "Sub", "Mul", "Div", "BatchNormalization", "Relu", "Clip", "HardTanh", "Identity"})
LAYOUT_OPS = frozenset({"Flatten", "Reshape", "Identity", "Transpose", "Squeeze", "Unsqueeze"})
# layout ops inside a chain (accumulator -> quantiser): they move elements, the chain's scalar constants do not care
MOVE_OPS = frozenset({"Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze"})
HOST_ELEMENTWISE = frozenset({"Mul", "Add", "Sub", "Div"})
# element-wise ops a lookup table can hold (between a quantised tensor and the next quantiser)
LUT_OPS = CHAIN_OPS | frozenset({
    "Gelu", "Erf", "Sigmoid", "Tanh", "Exp", "Log", "Softplus", "Softsign", "HardSigmoid", "HardSwish", "Mish",
    "Elu", "Selu", "Celu", "LeakyRelu", "Abs", "Neg", "Sqrt", "Reciprocal", "Pow", "Sin", "Cos", "Min", "Max",
})
MAX_LUT_LEVELS = 4096  # inputs of up to 12 bits


@dataclass
class Value:
    """An integer-valued QONNX tensor as it lives in the IR."""

    streams: list[str]  # IR streams carrying it, one per remaining consumer
    dtype: IntType
    scale: np.ndarray  # per channel (C,) or scalar (); onnx value = int * scale
    layout: Layout
    onnx_shape: tuple[int, ...]  # per sample

    @property
    def ir_shape(self) -> tuple[int, ...]:
        if self.layout.kind == "index":
            return tuple(self.layout.perm.shape)
        if self.layout.kind == "nhwc":
            c, h, w = chw(self.onnx_shape)
            return (h, w, c)
        return (int(np.prod(self.onnx_shape)),)

    @property
    def channels(self) -> int:
        return self.ir_shape[-1]


@dataclass
class Accumulator:
    """An IR node whose output is an integer accumulator, before its activation is decided."""

    node: Node
    onnx_tensor: str  # the QONNX tensor the accumulator (times scale, plus offset) equals
    lo: np.ndarray  # (C,) smallest reachable accumulator per channel
    hi: np.ndarray  # (C,) largest
    scale: np.ndarray  # (C,) float64
    offset: np.ndarray  # (C,) float64, e.g. a Gemm bias
    mul: int = 1  # the QONNX value uses (acc * mul + add): XNOR popcount -> dot product is (2p - MW)
    add: int = 0
    fusable: bool = True  # MVAU/VVAU take thresholds inside; others get a Thresholding node after them
    layout: Layout | None = None  # how the accumulator tensor maps onto the stream (None: nhwc or flat by rank)


class Lowering:
    """One lowering run over one model (stateful while it walks; the result is an immutable DataflowGraph)."""

    def __init__(self, loaded: LoadedModel, top_k: int = 0) -> None:
        self.path = loaded.path
        self.model: ModelWrapper = loaded.model
        self.top_k = top_k
        self.values: dict[str, Value] = {}
        self.nodes: list[Node] = []
        self.tensors: dict[str, TensorInfo] = {}
        self.probes: dict[str, Probe] = {}
        self.done: set[str] = set()  # names of nodes already lowered as part of a chain
        self.counts: dict[str, int] = {}
        self.pre: InputQuant | None = None
        self.post: OutputAffine | None = None
        self.final_stream = ""
        self.regions: dict[str, tuple[list[NodeProto], NodeProto] | None] = {}
        self.consts: dict[str, np.ndarray | None] = {}
        self.producers = {o: n for n in self.model.graph.node for o in n.output}

    # ------------------------------------------------------------------ helpers
    def fail(self, node: NodeProto, reason: str) -> EdgeError:
        return EdgeError(f"{self.path}: node '{node.name}' ({node.op_type}): {reason}")

    def fresh(self, prefix: str) -> str:
        i = self.counts.get(prefix, 0)
        self.counts[prefix] = i + 1
        return f"{prefix}_{i}"

    def shape(self, tensor: str) -> tuple[int, ...]:
        return tuple(int(d) for d in self.model.get_tensor_shape(tensor)[1:])

    def init(self, tensor: str) -> np.ndarray | None:
        """A constant: an initializer, or a Quant of initializers (a quantised bias), as the golden computes it."""
        value = self.model.get_initializer(tensor)
        if value is not None or not tensor:
            return value
        if tensor not in self.consts:
            q = self.producers.get(tensor)
            params = [self.model.get_initializer(i) for i in q.input] if q is not None and q.op_type == "Quant" \
                else [None]
            if any(p is None for p in params):
                self.consts[tensor] = None
            else:
                mode = self.attr(q, "rounding_mode", b"ROUND")
                mode = mode.decode() if isinstance(mode, bytes) else mode
                x, sc, zp, bits = (np.asarray(p, np.float32) for p in params)
                self.consts[tensor] = np.asarray(quant(x, sc, zp, bits, int(self.attr(q, "signed", 1)),
                                                       int(self.attr(q, "narrow", 0)), mode), np.float32)
        return self.consts[tensor]

    def attr(self, node: NodeProto, name: str, default=None):
        a = get_by_name(node.attribute, name)
        return default if a is None else helper.get_attribute_value(a)

    def consumers(self, tensor: str) -> list[NodeProto]:
        return self.model.find_consumers(tensor) or []

    def add_node(self, node: Node, out_shape: tuple[int, ...], dtype: IntType) -> None:
        self.nodes.append(node)
        self.tensors[node.output] = TensorInfo(out_shape, dtype)

    def publish(self, onnx_tensor: str, stream: str, dtype: IntType, scale: np.ndarray, layout: Layout,
                probe: bool = True) -> Value:
        """Register a QONNX tensor's Value; fork its stream when more than one node consumes it."""
        shape = self.shape(onnx_tensor)
        consumers = self.consumers(onnx_tensor)
        region = self.lut_region(onnx_tensor)
        if region is not None:  # the table reads the tensor once, however often its function uses it
            inside = {n.name for n in region[0]}
            consumers = [c for c in consumers if c.name not in inside] + [region[0][0]]
        n = len(consumers) + (1 if onnx_tensor == self.model.graph.output[0].name else 0)
        streams = [stream]
        if n > 1:
            # a chain of two-way forks (the kernel has two outputs): each takes one consumer's copy off the front
            value_shape = self.tensors[stream].shape
            streams, src = [], stream
            for i in range(n - 1):
                last = i == n - 2
                outs = (f"{stream}_dup{i}", f"{stream}_dup{i + 1}" if last else f"{stream}_fork{i}")
                dup = DuplicateStreams(name=self.fresh("DuplicateStreams"), inputs=(src,), output=outs[0],
                                       channels=value_shape[-1], vectors=int(np.prod(value_shape[:-1])),
                                       dtype=dtype, outputs=outs)
                self.nodes.append(dup)
                for o in outs:
                    self.tensors[o] = TensorInfo(value_shape, dtype)
                streams.append(outs[0])
                src = outs[1]
            streams.append(src)
        if probe:
            self.probes[stream] = Probe(onnx_tensor, np.asarray(scale, np.float64), layout)
        value = Value(streams, dtype, np.asarray(scale, np.float64), layout, shape)
        self.values[onnx_tensor] = value
        return value

    def lut_region(self, tensor: str) -> tuple[list[NodeProto], NodeProto] | None:
        """The element-wise ops from a quantised tensor to one quantiser that thresholds cannot express (GELU,
        SiLU's x * sigmoid(x), tanh, ...): they become one lookup table. None when there is no such region."""
        if tensor in self.regions:
            return self.regions[tensor]
        if not any(c.op_type in LUT_OPS for c in self.consumers(tensor)):
            self.regions[tensor] = None
            return None
        region: list[NodeProto] = []
        inside = {tensor}
        end: NodeProto | None = None
        found = None
        for node in self.model.graph.node:
            dyn = [i for i in node.input if i and self.init(i) is None]
            if not any(i in inside for i in dyn):
                continue
            internal = any(i in inside and i != tensor for i in dyn)
            if node.op_type in QUANTISERS and internal and node.input[0] in inside and end is None and \
                    all(self.init(i) is not None for i in node.input[1:]):
                end = node
                continue
            if node.op_type in LUT_OPS and all(i in inside for i in dyn) and end is None:
                region.append(node)
                inside.add(node.output[0])
                continue
            if internal:  # a region value escapes to something else
                break
        else:
            names = {n.name for n in region}
            escapes = any(c.name not in names and c is not end for n in region for c in self.consumers(n.output[0]))
            to_output = any(n.output[0] == self.model.graph.output[0].name for n in region)
            needs_table = any(n.op_type not in CHAIN_OPS or
                              sum(1 for i in n.input if i and self.init(i) is None) > 1 for n in region)
            if end is not None and region and needs_table and not escapes and not to_output:
                found = (region, end)
        self.regions[tensor] = found
        return found

    def lower_lookup(self, tensor: str, region: list[NodeProto], q: NodeProto) -> None:
        """Evaluate the region and its quantiser on every input level, as the golden model does, into a table."""
        x = self.values[tensor]
        levels = int(x.dtype.max - x.dtype.min + 1)
        if levels > MAX_LUT_LEVELS or x.dtype.bipolar:
            raise self.fail(region[0], f"{region[0].op_type} of a {x.dtype.bits}-bit input: a lookup table needs "
                                       "an input of at most 12 bits; quantise its input")
        s_x = self.scalar_scale(x, region[0])
        scale, zp, bits = (self.init(q.input[i]) for i in (1, 2, 3))
        if q.op_type != "Quant" or np.any(zp != 0):
            raise self.fail(q, "the quantiser after an element-wise function needs a zero-point of 0")
        signed, narrow = bool(self.attr(q, "signed", 1)), bool(self.attr(q, "narrow", 0))
        dtype, _, _ = quant_type(int(np.asarray(bits).item()), signed, narrow)
        shape = x.onnx_shape
        ks = np.arange(x.dtype.min, x.dtype.max + 1, dtype=np.float64)
        inp = np.broadcast_to((ks * s_x).astype(np.float32).reshape(-1, *([1] * len(shape))), (levels, *shape))
        inits = {i for n in [*region, q] for i in n.input if i and self.init(i) is not None}
        graph = helper.make_graph(
            [*region, q], "lookup", [helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT, [levels, *shape])],
            [helper.make_tensor_value_info(q.output[0], onnx.TensorProto.FLOAT, None)],
            [numpy_helper.from_array(self.init(i), i) for i in sorted(inits)])
        sub = ModelWrapper(helper.make_model(graph, opset_imports=list(self.model.model.opset_import)))
        sub = sub.transform(InferShapes())
        out = np.asarray(execute_onnx(sub, {tensor: np.ascontiguousarray(inp)})[q.output[0]], np.float64)
        s_out = np.asarray(scale, np.float64)
        lv = np.rint(out / np.broadcast_to(s_out, out.shape)).astype(np.int64)
        ir = x.layout.to_ir(lv).reshape(levels, -1, x.channels)  # (levels, vectors, channels)
        if np.any(ir != ir[:, :1]):
            raise self.fail(region[0], "the element-wise function varies along the tensor (per-position constants)")
        table = ir[:, 0, :].T.copy()  # (channels, levels)
        if np.all(table == table[:1]):
            table = table[:1]
        out_scale = s_out.reshape(()) if s_out.size == 1 else \
            x.layout.to_ir(np.broadcast_to(s_out, (1, *shape)).astype(np.float64)).reshape(-1, x.channels)[0]
        stream = self.fresh("t")
        ir_shape = x.ir_shape
        self.add_node(Lookup(name=self.fresh("Lookup"), inputs=(self.claim(x),), output=stream, channels=x.channels,
                             vectors=int(np.prod(ir_shape[:-1])), in_dtype=x.dtype, table=table, out_dtype=dtype),
                      ir_shape, dtype)
        for n in [*region, q]:
            self.done.add(n.name)
        self.publish(q.output[0], stream, dtype, out_scale, x.layout)

    def take(self, onnx_tensor: str, node: NodeProto) -> Value:
        """The Value of an input tensor, claiming one of its streams for this consumer."""
        if onnx_tensor not in self.values:
            raise self.fail(node, f"input '{onnx_tensor}' is not an integer (quantised) tensor; "
                                  "every compute layer needs a quantiser before it")
        return self.values[onnx_tensor]

    def claim(self, value: Value) -> str:
        return value.streams.pop(0)

    def scalar_scale(self, value: Value, node: NodeProto) -> float:
        s = np.unique(value.scale)
        if len(s) != 1:
            raise self.fail(node, "input activations have per-channel scales; expected one scale per tensor")
        return float(s[0])

    # ------------------------------------------------------------------ weights
    def weights(self, node: NodeProto, tensor: str) -> tuple[np.ndarray, np.ndarray, IntType]:
        """Integer weights, their scale broadcast to the weight shape, and their datatype."""
        q = self.model.find_producer(tensor)
        if q is None or q.op_type not in QUANTISERS or self.init(q.input[0]) is None:
            raise self.fail(node, "weights are not quantised (expected a Quant/BipolarQuant on an initializer)")
        w = self.init(q.input[0]).astype(np.float32)
        scale = self.init(q.input[1])
        if scale is None:
            raise self.fail(q, "weight scale is not a constant")
        s = np.broadcast_to(np.asarray(scale, np.float64), w.shape)
        if q.op_type == "BipolarQuant":
            return np.where(w >= 0, 1, -1).astype(np.int64), s, BIPOLAR
        zp, bits = self.init(q.input[2]), self.init(q.input[3])
        if zp is None or bits is None or np.any(zp != 0):
            raise self.fail(q, "weight zero-point must be a constant 0")
        signed, narrow = int(self.attr(q, "signed", 1)), int(self.attr(q, "narrow", 0))
        mode = self.attr(q, "rounding_mode", b"ROUND")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        y = quant(w, np.asarray(scale, np.float32), np.float32(0), np.float32(bits), signed, narrow, mode)
        w_int = np.rint(np.asarray(y, np.float64) / s).astype(np.int64)
        dtype, _, _ = quant_type(int(np.asarray(bits).item()), bool(signed), bool(narrow))
        return w_int, s, dtype

    def bias(self, node: NodeProto, tensor: str) -> np.ndarray:
        """A layer bias: a constant, or a quantised constant (brevitas' Int32Bias: a Quant on the initializer),
        as the float32 values the golden model adds."""
        value = self.init(tensor)
        if value is not None:
            return np.asarray(value, np.float32).astype(np.float64)
        q = self.model.find_producer(tensor)
        params = [self.init(i) for i in q.input] if q is not None and q.op_type == "Quant" else [None]
        if any(p is None for p in params):
            raise self.fail(node, "the bias must be a constant or a quantised constant")
        mode = self.attr(q, "rounding_mode", b"ROUND")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        b, s, z, bits = (np.asarray(v, np.float32) for v in params)
        y = quant(b, s, z, bits, int(self.attr(q, "signed", 1)), int(self.attr(q, "narrow", 0)), mode)
        self.done.add(q.name)
        return np.asarray(y, np.float32).astype(np.float64)

    @staticmethod
    def per_row_scale(s: np.ndarray, axis: int, where: Callable[[str], EdgeError]) -> np.ndarray:
        """The weight scale per output channel; it must not vary along the reduction axis."""
        first = np.take(s, [0], axis=axis)
        if not np.allclose(s, first, rtol=0, atol=0):
            raise where("weight scale varies along the reduction axis; only per-output-channel scales lower exactly")
        return first.reshape(-1) if first.size > 1 else first.reshape(())

    # ------------------------------------------------------------------ accumulator bounds
    @staticmethod
    def dot_bounds(w: np.ndarray, dtype: IntType, pad_zero: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Per-row bounds of w @ x over every x of the input type (w: (rows, K))."""
        xmin, xmax = dtype.min, dtype.max
        if pad_zero:
            xmin, xmax = min(xmin, 0), max(xmax, 0)
        lo = np.minimum(w * xmin, w * xmax).sum(1)
        hi = np.maximum(w * xmin, w * xmax).sum(1)
        return lo.astype(np.int64), hi.astype(np.int64)

    # ------------------------------------------------------------------ chains
    def chain_from(self, first: NodeProto, start_tensor: str) -> tuple[list[NodeProto], str, NodeProto | None]:
        """Follow element-wise ops from `first` to a quantiser (returned) or to the graph output (None)."""
        chain: list[NodeProto] = []
        node: NodeProto | None = first
        tensor = start_tensor
        out_name = self.model.graph.output[0].name
        while node is not None:
            dynamic = [i for i in node.input if i and self.init(i) is None]
            if dynamic != [tensor]:
                raise self.fail(node, "expected one streamed input after the accumulator (a residual Add must take "
                                      "two quantised tensors of one scale)")
            if node.op_type in (*QUANTISERS, "Trunc"):
                chain.append(node)
                return chain, node.output[0], node
            if node.op_type not in CHAIN_OPS and node.op_type not in MOVE_OPS:
                raise self.fail(node, f"{node.op_type} between an accumulator and its quantiser cannot be lowered "
                                      "exactly; move it after the quantiser")
            for i in node.input[1:]:
                c = self.init(i) if i else None
                if c is not None and c.size > 1 and int(np.prod(c.shape)) != max(c.shape):
                    raise self.fail(node, "per-pixel constants cannot become per-channel thresholds")
            chain.append(node)
            tensor = node.output[0]
            if tensor == out_name:
                return chain, tensor, None
            nxt = self.consumers(tensor)
            if len(nxt) != 1:
                raise self.fail(node, "the activation function forks before its quantiser")
            node = nxt[0]
        raise AssertionError("unreachable")

    def is_squeeze(self, node: NodeProto) -> bool:
        """A Flatten/Reshape that drops unit axes only ((N, C, 1, 1) -> (N, C)): element-wise, fine inside a chain."""
        if node.op_type not in ("Flatten", "Reshape"):
            return False
        shape_in, shape_out = self.shape(node.input[0]), self.shape(node.output[0])
        return len(shape_out) == 1 and len(shape_in) > 1 and shape_in[0] == shape_out[0] and \
            all(d == 1 for d in shape_in[1:])

    def transpose_perm(self, node: NodeProto) -> list[int]:
        """A Transpose's permutation of the per-sample axes (the batch axis must stay first)."""
        rank = len(self.model.get_tensor_shape(node.input[0]))
        perm = [int(p) for p in self.attr(node, "perm", list(range(rank))[::-1])]
        if perm[0] != 0:
            raise self.fail(node, "Transpose moves the batch axis")
        return [p - 1 for p in perm[1:]]

    def moves(self, chain: list[NodeProto]) -> list[NodeProto]:
        """The layout ops of a chain that are more than a squeeze of unit axes."""
        return [n for n in chain if n.op_type in MOVE_OPS and not self.is_squeeze(n)]

    def full_shape(self, tensor: str) -> tuple[int, ...]:
        return tuple(int(d) for d in self.model.get_tensor_shape(tensor))

    def batch_one(self) -> bool:
        """Exported at batch size 1: the whole tensor is one sample, so Transposes may move the batch axis."""
        return self.full_shape(self.model.graph.input[0].name)[:1] == (1,)

    def move_layout(self, layout: Layout, onnx_tensor: str, moves: list[NodeProto]) -> Layout:
        """Carry a layout through Reshape/Transpose/... nodes: the stream stays, its index array changes (and the
        batch axis moves with the Transposes and Reshapes of seq-first attention)."""
        index = index_of(layout, self.shape(onnx_tensor))
        axis = layout.batch_axis if layout.kind == "index" else 0
        for n in moves:
            if self.batch_one():
                full = self.full_shape(n.input[0])
                if n.op_type == "Transpose":
                    rank = len(full)
                    perm = [int(p) for p in self.attr(n, "perm", list(range(rank))[::-1])]
                    index, axis = moved(index, full, perm), transpose_batch_axis(perm, axis)
                else:
                    axis = reshape_batch_axis(full, self.full_shape(n.output[0]), axis)
                if axis is None:
                    raise self.fail(n, "the batch axis cannot be followed through this reshape")
            else:
                index = moved(index, self.shape(n.input[0]),
                              self.transpose_perm(n) if n.op_type == "Transpose" else None)
        out_full = self.full_shape(moves[-1].output[0]) if moves else self.full_shape(onnx_tensor)
        inner = out_full[axis] if self.batch_one() else 1  # per-sample extent of the batch axis (heads, or 1)
        return Layout("index", index, batch_axis=axis, batch_inner=inner)

    def chain_axis(self, layout: Layout | None, onnx_tensor: str) -> int:
        """The axis of the QONNX tensor (batch axis 0) that the stream's channels run along: 1 for NCHW maps and
        feature vectors, the last one for tokens."""
        if layout is None or layout.kind != "index":
            return 1
        shape = self.shape(onnx_tensor)
        return len(shape) if channels_last(layout.perm, shape) else -1

    def chain_fn(self, chain: list[NodeProto], start: str, end: str, acc: Accumulator,
                 rank: int, axis: int = 1) -> Callable[[np.ndarray], np.ndarray]:
        """The exact QONNX function from integer accumulators (B, C) to the chain's float output (B, C).

        Layout ops in the chain become Identity (the caller checked that its constants are scalars); `axis` is the
        QONNX axis the channels run along."""
        chain = [helper.make_node("Identity", [n.input[0]], [n.output[0]], name=n.name)
                 if n.op_type in MOVE_OPS and not self.is_squeeze(n) else n for n in chain]
        inits = {i for n in chain for i in n.input if i and self.init(i) is not None}
        init_protos = [numpy_helper.from_array(self.init(i), i) for i in sorted(inits)]
        opsets = list(self.model.model.opset_import)

        subs: dict[tuple[int, ...], ModelWrapper] = {}  # one shape-inferred sub-model per input shape

        def run(a: np.ndarray) -> np.ndarray:
            b, c = a.shape
            z = ((a * acc.mul + acc.add).astype(np.float64) * acc.scale + acc.offset).astype(np.float32)
            shape = [b] + [1] * (rank - 1)
            shape[axis if axis > 0 else 1] = c
            if tuple(shape) not in subs:
                graph = helper.make_graph(
                    chain, "chain", [helper.make_tensor_value_info(start, onnx.TensorProto.FLOAT, shape)],
                    [helper.make_tensor_value_info(end, onnx.TensorProto.FLOAT, None)], init_protos,
                )
                subs[tuple(shape)] = ModelWrapper(helper.make_model(graph, opset_imports=opsets)).transform(
                    InferShapes())
            out = execute_onnx(subs[tuple(shape)], {start: z.reshape(shape)})[end]
            return np.asarray(out, np.float64).reshape(b, c)

        return run

    def finish(self, acc: Accumulator, first: NodeProto | None) -> None:
        """Decide what follows an accumulator: thresholds (fused or a Thresholding node) or the host affine."""
        out_shape = self.tensors[acc.node.output].shape
        channels = out_shape[-1]
        rank = len(self.model.get_tensor_shape(acc.onnx_tensor))
        layout = acc.layout or (Layout("nhwc") if len(out_shape) == 3 else Layout("flat"))
        if first is None:  # the accumulator is the graph output itself
            return self.host_affine(acc, [], acc.onnx_tensor, rank, layout)
        chain, end, q = self.chain_from(first, acc.onnx_tensor)
        axis = self.chain_axis(acc.layout, acc.onnx_tensor)
        moves = self.moves(chain)
        if moves or axis < 0:
            # constants before the first move apply along the accumulator's channels; after it, only scalars
            first_move = chain.index(moves[0]) if moves else 0
            consts = [self.init(i) for n in chain[first_move:] if n.op_type not in MOVE_OPS and n is not q
                      for i in n.input if i and self.init(i) is not None]
            if any(c.size > 1 for c in consts):
                raise self.fail(chain[0], "per-channel constants before a reshape or transpose cannot become "
                                          "thresholds; move the reshape after the quantiser")
            axis = max(axis, 1)
        if moves:
            layout = self.move_layout(layout, acc.onnx_tensor, moves)
        if q is None:
            return self.host_affine(acc, chain, end, rank, layout, axis)
        fn = self.chain_fn(chain, acc.onnx_tensor, end, acc, rank, axis)
        if q.op_type == "BipolarQuant":
            out_scale = np.asarray(self.init(q.input[1]), np.float64)
            dtype, qmin, qmax, step = BIPOLAR, -1, 1, 2
        elif q.op_type == "Trunc":
            out_scale, dtype, qmin, qmax = self.trunc_output(q)
            step = 1
        else:
            scale, zp, bits = (self.init(q.input[i]) for i in (1, 2, 3))
            if scale is None or bits is None or zp is None or np.any(zp != 0):
                raise self.fail(q, "activation quantiser needs constant scale and bit width and a zero-point of 0")
            out_scale = np.asarray(scale, np.float64)
            dtype, qmin, qmax = quant_type(int(np.asarray(bits).item()), bool(self.attr(q, "signed", 1)),
                                           bool(self.attr(q, "narrow", 0)))
            step = 1
        if out_scale.size not in (1, channels) or (out_scale.size > 1 and
                                                   int(np.max(out_scale.shape)) != out_scale.size):
            raise self.fail(q, f"activation scale of shape {out_scale.shape} is neither per-tensor nor per-channel")
        out_scale = out_scale.reshape(-1) if out_scale.size > 1 else out_scale.reshape(())
        if out_scale.size > 1 and layout.perm is not None:
            raise self.fail(q, "per-channel activation scales after a flatten are not supported")

        def levels(a: np.ndarray) -> np.ndarray:
            return np.rint(fn(a) / out_scale).astype(np.int64)

        th = derive_thresholds(levels, acc.lo, acc.hi, qmin, qmax, step, dtype, f"{self.path}: node '{q.name}'")
        node = acc.node
        if acc.fusable:
            node = _with_thresholds(node, th)
            self.nodes[-1] = node
            self.tensors[node.output] = TensorInfo(out_shape, dtype)
            stream = node.output
        else:
            stream = self.fresh("t")
            vectors = int(np.prod(out_shape[:-1]))
            self.add_node(Thresholding(name=self.fresh("Thresholding"), inputs=(node.output,), output=stream,
                                       channels=channels, vectors=vectors,
                                       in_dtype=self.tensors[node.output].dtype, thresholds=th), out_shape, dtype)
        for n in chain:
            self.done.add(n.name)
        self.publish(end, stream, dtype, out_scale, layout)

    def trunc_output(self, q: NodeProto) -> tuple[np.ndarray, IntType, int, int]:
        """Output scale and integer type of a Trunc (v1: scale * 2**(in_bits - out_bits); v2: its input 4)."""
        consts = [self.init(i) for i in q.input[1:]]
        if any(c is None for c in consts) or np.any(consts[1] != 0):
            raise self.fail(q, "Trunc needs constant scales and bit widths and a zero-point of 0")
        scale, _, in_bits = (np.asarray(c, np.float64) for c in consts[:3])
        if len(q.input) == 6:
            out_scale, out_bits = np.asarray(consts[3], np.float64), int(np.asarray(consts[4]).item())
        else:
            out_bits = int(np.asarray(consts[3]).item())
            out_scale = scale * 2.0 ** (float(in_bits) - out_bits)
        dtype, qmin, qmax = quant_type(out_bits, bool(self.attr(q, "signed", 1)), bool(self.attr(q, "narrow", 0)))
        return out_scale, dtype, qmin, qmax

    def host_affine(self, acc: Accumulator, chain: list[NodeProto], end: str, rank: int, layout: Layout,
                    axis: int = 1) -> None:
        """The graph output is affine in the accumulator: the host computes it as acc * scale + bias."""
        node = acc.node
        if chain:
            fn = self.chain_fn(chain, acc.onnx_tensor, end, acc, rank, axis)
            # the line through the two ends of the reachable range: a slope from fn(1) - fn(0) carries float32
            # rounding of the chain's constants, multiplied by every accumulator step
            lo, hi = acc.lo.astype(np.int64), np.maximum(acc.hi, acc.lo + 1).astype(np.int64)
            f_lo, f_hi = fn(lo[None, :])[0], fn(hi[None, :])[0]
            scale = (f_hi - f_lo) / (hi - lo)
            bias = f_lo - scale * lo
            probe = np.stack([acc.lo, acc.hi, (acc.lo + acc.hi) // 2])
            got = fn(probe)
            if not np.allclose(got, bias + scale * probe, rtol=1e-4, atol=1e-5 * np.abs(got).max(initial=1e-1)):
                raise self.fail(chain[-1], "the graph output is not an affine function of the last accumulator")
        else:
            scale = acc.scale * acc.mul * np.ones(len(acc.lo))
            bias = acc.offset + acc.add * acc.scale
        for n in chain:
            self.done.add(n.name)
        stream = node.output
        top_k = 0
        if self.top_k:
            top_k = self.label_select(node, scale, bias)
            stream = self.nodes[-1].output
        self.final_stream = stream
        self.post = OutputAffine(scale=np.asarray(scale, np.float64), bias=np.asarray(bias, np.float64),
                                 onnx_shape=self.shape(end), layout=layout, top_k=top_k)

    def label_select(self, node: Node, scale: np.ndarray, bias: np.ndarray) -> int:
        """Top-k on the accelerator is exact only when every class shares one positive scale and no bias."""
        if not (np.all(scale > 0) and np.allclose(scale, scale[0], rtol=0, atol=0) and np.all(bias == 0)):
            raise EdgeError(
                f"{self.path}: --top-k needs one positive output scale for every class and no bias, so that the "
                "order of the integer accumulators equals the order of the outputs; this model has per-class "
                "scales or a bias (train with a per-tensor last layer, or take top-k on the host)"
            )
        labels = self.tensors[node.output].shape[-1]
        out = self.fresh("t")
        self.add_node(LabelSelect(name=self.fresh("LabelSelect"), inputs=(node.output,), output=out, labels=labels,
                                  k=self.top_k, in_dtype=self.tensors[node.output].dtype),
                      (self.top_k,), smallest_type(0, labels - 1))
        return self.top_k

    def next_of(self, tensor: str) -> NodeProto | None:
        nxt = self.consumers(tensor)
        if not nxt:
            if tensor != self.model.graph.output[0].name:
                raise EdgeError(f"{self.path}: tensor '{tensor}' is computed but never used")
            return None
        if len(nxt) > 1:
            raise self.fail(nxt[0], "an accumulator feeds several nodes; quantise it first")
        return nxt[0]

    # ------------------------------------------------------------------ op lowerings
    def host_prefix(self) -> tuple[NodeProto | None, list[HostOp]]:
        """Follow the model input through constant element-wise ops (`2 * x - 1`, `(x - mean) / std`) and
        reshapes to the input quantiser: those become exact host-side ops in front of the accelerator."""
        tensor = self.model.graph.input[0].name
        ops: list[HostOp] = []
        rank = len(self.model.get_tensor_shape(tensor))
        while True:
            users = self.consumers(tensor)
            if len(users) != 1:
                return None, []
            node = users[0]
            if node.op_type in QUANTISERS and node.input[0] == tensor:
                return node, ops
            if node.op_type == "Gather" and node.input[1] == tensor and not ops:
                self.embedding(node)
                return node, []
            if node.op_type in HOST_ELEMENTWISE:
                others = [i for i in node.input if i != tensor]
                c = self.init(others[0]) if len(others) == 1 else None
                if c is None:
                    raise self.fail(node, "preprocessing before the input quantiser must use constants")
                if c.ndim >= rank and c.shape[0] != 1:
                    raise self.fail(node, "a preprocessing constant varies along the batch axis")
                ops.append(HostOp(node.op_type, np.asarray(c, np.float32), const_first=node.input[0] != tensor))
            elif node.op_type in ("Reshape", "Flatten"):
                ops.append(HostOp("Reshape", np.asarray(self.shape(node.output[0]), np.int64)))
                rank = len(self.shape(node.output[0])) + 1
            else:
                raise self.fail(node, f"{node.op_type} between the model input and its input quantiser cannot run "
                                      "exactly on the host; only Mul/Add/Sub/Div by constants and Reshape/Flatten")
            self.done.add(node.name)
            tensor = node.output[0]

    def embedding(self, node: NodeProto) -> NodeProto:
        """Token ids into a Gather from a quantised table (an Embedding): the row lookup is a host-side step
        (a vocabulary table is megabytes, the size of the device's whole on-chip memory), and the rows, integers of
        the table's scale, enter the accelerator. Returns the table's quantiser, which describes the stream."""
        q = self.producers.get(node.input[0])
        if self.attr(node, "axis", 0) != 0 or q is None or q.op_type != "Quant" or \
                self.init(node.input[0]) is None:
            raise self.fail(node, "token ids must index the rows (axis 0) of a quantised constant table (a Brevitas "
                                  "QuantEmbedding, or `edge quantize` of the model)")
        return q

    def lower_input(self, node: NodeProto, host_ops: list[HostOp] | None = None) -> None:
        gather = None
        if node.op_type == "Gather":  # an embedding: the table's quantiser describes the rows the host looks up
            gather, node = node, self.embedding(node)
            host_ops = [HostOp("Gather", np.asarray(self.init(gather.input[0]), np.float32))]
        shape = self.shape(gather.output[0] if gather is not None else node.input[0])
        raw = self.shape(self.model.graph.input[0].name) if host_ops else ()
        feature_map = len(shape) == 3 or (len(shape) == 2 and self.feeds_conv(node.output[0]))
        layout = Layout("nhwc") if feature_map else Layout("flat")
        c, h, w = chw(shape) if feature_map else (0, 0, 0)
        value_shape = (h, w, c) if feature_map else (int(np.prod(shape)),)
        if gather is not None and len(shape) >= 2:  # embedded tokens: one vector per token, in order
            feature_map, value_shape = False, (int(np.prod(shape[:-1])), shape[-1])
            layout = Layout("index", np.arange(int(np.prod(shape))).reshape(value_shape))
        if node.op_type == "BipolarQuant":
            scale = self.init(node.input[1])
            if scale is None or np.asarray(scale).size != 1:
                raise self.fail(node, "the bipolar input quantiser needs one constant scale")
            self.pre = InputQuant(float(np.asarray(scale).item()), 1, True, False, "ROUND", shape,
                                  host_ops=tuple(host_ops or ()), raw_shape=raw, bipolar=True,
                                  map_1d=feature_map and len(shape) == 2)
            self.tensors["input"] = TensorInfo(value_shape, BIPOLAR)
            self.publish(node.output[0], "input", BIPOLAR, np.asarray(scale, np.float64).reshape(()), layout)
            return
        scale, zp, bits = (self.init(node.input[i]) for i in (1, 2, 3))
        if scale is None or zp is None or bits is None or np.any(zp != 0) or np.asarray(scale).size != 1:
            what = "the embedding table's quantiser" if gather is not None else "the input quantiser"
            raise self.fail(node, f"{what} needs one constant scale, a zero-point of 0 and a constant bit width")
        signed, narrow = bool(self.attr(node, "signed", 1)), bool(self.attr(node, "narrow", 0))
        mode = self.attr(node, "rounding_mode", b"ROUND")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        nbits = int(np.asarray(bits).item())
        dtype, _, _ = quant_type(nbits, signed, narrow)
        self.pre = InputQuant(float(np.asarray(scale).item()), nbits, signed, narrow, mode, shape,
                              host_ops=tuple(host_ops or ()), raw_shape=raw, map_1d=feature_map and len(shape) == 2)
        self.tensors["input"] = TensorInfo(value_shape, dtype)
        published = gather.output[0] if gather is not None else node.output[0]
        self.publish(published, "input", dtype, np.asarray(scale, np.float64).reshape(()), layout)

    def feeds_conv(self, tensor: str) -> bool:
        """A (C, L) tensor read by a Conv or MaxPool is a 1-D feature map; otherwise it is a feature vector."""
        return any(n.op_type in ("Conv", "MaxPool") for n in self.consumers(tensor))

    def lower_matmul(self, node: NodeProto) -> None:
        if node.op_type == "MatMul" and all(i in self.values for i in node.input):
            return self.lower_stream_matmul(node)
        x = self.take(node.input[0], node)
        if x.layout.kind == "index" and len(x.onnx_shape) == 1:  # a vector after a move: a permuted flat one
            x.layout = Layout("flat", x.layout.perm.reshape(-1))
        if x.layout.kind == "index":
            return self.lower_token_matmul(node, x)
        if x.layout.kind != "flat":
            raise self.fail(node, "MatMul/Gemm on a feature map; flatten it first")
        s_x = self.scalar_scale(x, node)
        offset = np.zeros(0)
        if node.op_type == "Gemm":
            plain = self.attr(node, "alpha", 1.0) == 1.0 and self.attr(node, "beta", 1.0) == 1.0
            if self.attr(node, "transA", 0) or not plain:
                raise self.fail(node, "only Gemm with alpha=1, beta=1 and no transA is supported")
            w, s, dtype_w = self.weights(node, node.input[1])
            if not self.attr(node, "transB", 0):
                w, s = w.T, s.T
            s_row = self.per_row_scale(s, 1, lambda r: self.fail(node, r))
            if len(node.input) > 2 and node.input[2]:
                offset = np.broadcast_to(self.bias(node, node.input[2]).reshape(-1), (w.shape[0],))
        else:
            w, s, dtype_w = self.weights(node, node.input[1])
            w, s = w.T, s.T  # MatMul B is (MW, MH); the MVAU keeps (MH, MW)
            s_row = self.per_row_scale(s, 1, lambda r: self.fail(node, r))
        mh, mw = w.shape
        if mw != x.channels:
            raise self.fail(node, f"weights expect {mw} inputs but the stream has {x.channels}")
        if x.layout.perm is not None:
            w = w[:, x.layout.perm]  # the stream arrives in channels-last order: permute the weight columns
        self.mvau(node, w, dtype_w, s_x * np.broadcast_to(s_row, (mh,)), offset, vectors=1,
                  out_shape=(mh,), in_stream=self.claim(x), in_dtype=x.dtype)

    def mvau(self, node: NodeProto, w: np.ndarray, dtype_w: IntType, scale: np.ndarray,
             offset: np.ndarray, vectors: int, out_shape: tuple[int, ...], in_stream: str, in_dtype: IntType,
             pad_zero: bool = False, layout: Layout | None = None) -> None:
        mh, mw = w.shape
        xnor = in_dtype.bipolar and dtype_w.bipolar
        if xnor:
            lo, hi = np.zeros(mh, np.int64), np.full(mh, mw, np.int64)
            mul, add = 2, -mw
        else:
            lo, hi = self.dot_bounds(w, in_dtype, pad_zero)
            mul, add = 1, 0
        acc_dtype = smallest_type(int(lo.min()), int(hi.max()))
        out = self.fresh("t")
        unit = MatrixVectorUnit(name=self.fresh("MVAU"), inputs=(in_stream,), output=out, mw=mw, mh=mh,
                                vectors=vectors, weights=w, in_dtype=in_dtype, w_dtype=dtype_w,
                                acc_dtype=acc_dtype, xnor=xnor)
        self.add_node(unit, out_shape, acc_dtype)
        acc = Accumulator(unit, node.output[0], lo, hi, np.asarray(scale, np.float64),
                          offset if offset.size else np.zeros(mh), mul, add, layout=layout)
        self.finish(acc, self.next_of(node.output[0]))

    def lower_token_matmul(self, node: NodeProto, x: Value) -> None:
        """A linear layer applied to every token (x: (..., tokens, features) @ W): an MVAU with one input vector per
        token, the features being the stream's channels."""
        index = regrouped(x.layout.perm, x.onnx_shape)
        if index is None:
            raise self.fail(node, "MatMul over an axis that is not the stream's channel axis")
        s_x = self.scalar_scale(x, node)
        w, s, dtype_w = self.weights(node, node.input[1])
        if w.ndim != 2:
            raise self.fail(node, "MatMul weights must be a matrix")
        w, s = w.T, s.T
        s_row = self.per_row_scale(s, 1, lambda r: self.fail(node, r))
        mh, mw = w.shape
        if mw != index.shape[-1]:
            raise self.fail(node, f"weights expect {mw} inputs but the stream has {index.shape[-1]}")
        out_index = (index[..., :1] // mw) * mh + np.arange(mh)
        self.mvau(node, w, dtype_w, s_x * np.broadcast_to(s_row, (mh,)), np.zeros(0),
                  vectors=int(np.prod(index.shape[:-1])), out_shape=(*index.shape[:-1], mh), in_stream=self.claim(x),
                  in_dtype=x.dtype, layout=Layout("index", out_index, batch_axis=x.layout.batch_axis,
                                                  batch_inner=x.layout.batch_inner))

    def lower_stream_matmul(self, node: NodeProto) -> None:
        """MatMul of two quantised activations (attention scores Q K^T, attention output A V): a StreamMatMul. The
        left operand must stream row by row with the heads interleaved (as a token-wise linear layer writes it),
        the right one either way (it is buffered whole)."""
        a, b = (self.take(i, node) for i in node.input)
        sa, sb = self.scalar_scale(a, node), self.scalar_scale(b, node)
        shape_of = self.full_shape if self.batch_one() else self.shape
        shape_a, shape_b = shape_of(node.input[0]), shape_of(node.input[1])
        if len(shape_a) < 2 or len(shape_b) < 2 or shape_a[:-2] != shape_b[:-2] or shape_a[-1] != shape_b[-2]:
            raise self.fail(node, f"MatMul of activations with shapes {shape_a} and {shape_b}: expected "
                                  "(..., M, K) @ (..., K, N) with the same leading axes")
        m, k, n = shape_a[-2], shape_a[-1], shape_b[-1]
        batch = int(np.prod(shape_a[:-2]))
        ia, ib = index_of(a.layout, a.onnx_shape), index_of(b.layout, b.onnx_shape)
        if not ordered(ia, np.arange(batch * m * k).reshape(batch, m, k).transpose(1, 0, 2)):
            raise self.fail(node, "the left operand of a MatMul of two activations must stream row by row (each "
                                  "row's heads one after the other); it arrives in another order")
        logical_b = np.arange(batch * k * n).reshape(batch, k, n)
        if ordered(ib, logical_b.transpose(2, 0, 1)):
            b_order = "nbk"
        elif ordered(ib, logical_b.transpose(1, 0, 2)):
            b_order = "kbn"
        else:
            raise self.fail(node, "the right operand of a MatMul of two activations arrives in an order the "
                                  "StreamMatMul cannot buffer (expected its columns or its rows, heads interleaved)")
        corners = [p * q for p in (a.dtype.min, a.dtype.max) for q in (b.dtype.min, b.dtype.max)]
        lo, hi = k * min(corners), k * max(corners)
        acc_dtype = smallest_type(lo, hi)
        out = self.fresh("t")
        unit = StreamMatMul(name=self.fresh("StreamMatMul"), inputs=(self.claim(a), self.claim(b)), output=out,
                            rows=m, batch=batch, inner=k, cols=n, b_order=b_order, in_dtypes=(a.dtype, b.dtype),
                            acc_dtype=acc_dtype)
        self.add_node(unit, (m, batch, n), acc_dtype)
        layout = Layout("index", np.arange(batch * m * n).reshape(batch, m, n).transpose(1, 0, 2),
                        batch_axis=a.layout.batch_axis if a.layout.kind == "index" else 0,
                        batch_inner=a.layout.batch_inner if a.layout.kind == "index" else 1)
        acc = Accumulator(unit, node.output[0], np.full(n, lo), np.full(n, hi), np.full(n, sa * sb), np.zeros(n),
                          fusable=False, layout=layout)
        self.finish(acc, self.next_of(node.output[0]))

    def quantiser_after(self, node: NodeProto) -> tuple[NodeProto, np.ndarray, IntType, int, int, bool, str]:
        """The Quant that must follow `node` (Softmax, LayerNormalization): node, scale, type, range, narrow, mode."""
        nxt = self.consumers(node.output[0])
        if len(nxt) != 1 or nxt[0].op_type != "Quant":
            raise self.fail(node, f"{node.op_type} must be followed by one Quant (its output quantiser)")
        q = nxt[0]
        scale, zp, bits = (self.init(q.input[i]) for i in (1, 2, 3))
        if scale is None or zp is None or bits is None or np.any(zp != 0) or np.asarray(scale).size != 1:
            raise self.fail(q, "the quantiser needs one constant scale, a zero-point of 0 and a constant bit width")
        signed, narrow = bool(self.attr(q, "signed", 1)), bool(self.attr(q, "narrow", 0))
        dtype, qmin, qmax = quant_type(int(np.asarray(bits).item()), signed, narrow)
        mode = self.attr(q, "rounding_mode", b"ROUND")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        return q, np.asarray(scale, np.float64).reshape(()), dtype, qmin, qmax, narrow, mode

    def norm_axis_ok(self, node: NodeProto, x: Value, default: int) -> np.ndarray:
        """Softmax and LayerNorm run along the stream's channels: the op's axis must be the tensor's last one."""
        rank = len(self.shape(node.input[0])) + 1
        axis = int(self.attr(node, "axis", default))
        if axis < 0:
            axis += rank
        index = regrouped(index_of(x.layout, x.onnx_shape), x.onnx_shape)
        if axis != rank - 1 or index is None:
            raise self.fail(node, f"{node.op_type} along axis {axis} of a rank-{rank} tensor: only along the last "
                                  "axis, when it is the stream's channel axis")
        return index

    def lower_softmax(self, node: NodeProto) -> None:
        """Softmax of a quantised tensor and the quantiser after it: an integer Softmax node (exp table, integer
        sum, fixed-point reciprocal). Not bit-exact with the float golden: within one output level."""
        x = self.take(node.input[0], node)
        index = self.norm_axis_ok(node, x, -1)
        layout = replace(x.layout, perm=index) if x.layout.kind == "index" else x.layout
        s_x = self.scalar_scale(x, node)
        q, s_out, dtype, qmin, qmax, _, mode = self.quantiser_after(node)
        if qmin > 0 or mode != "ROUND":
            raise self.fail(q, "the Softmax output quantiser must round (ROUND) and include 0")
        if qmin < 0:  # a signed quantiser of probabilities (int8 runtimes' choice) only ever holds 0..qmax
            dtype = smallest_type(0, qmax)
        span = int(x.dtype.max - x.dtype.min)
        d = np.arange(span + 1, dtype=np.float64)
        table = np.rint(2.0 ** Softmax.EXP_BITS * np.exp(-s_x * d)).astype(np.int64)
        zeros = np.flatnonzero(table == 0)
        table = table[: zeros[0] + 1] if len(zeros) else table
        if len(table) > 1 << 16:
            raise self.fail(node, f"the Softmax input spans {span + 1} levels at scale {s_x:g}; quantise its input "
                                  "(softmax_input_quant) so that the exp table stays small")
        recip = int(round(2.0 ** Softmax.RECIP_BITS / float(s_out)))
        out = self.fresh("t")
        shape = index.shape
        self.add_node(Softmax(name=self.fresh("Softmax"), inputs=(self.claim(x),), output=out, channels=shape[-1],
                              vectors=int(np.prod(shape[:-1])), in_dtype=x.dtype, table=table, recip=recip,
                              out_dtype=dtype), shape, dtype)
        self.done.add(q.name)
        self.publish(q.output[0], out, dtype, s_out, layout)

    def lower_layer_norm(self, node: NodeProto) -> None:
        """LayerNormalization of a quantised tensor, its affine part and the quantiser after it: a LayerNorm node
        (integer statistics, exact fixed-point normalisation, per-channel thresholds)."""
        x = self.take(node.input[0], node)
        index = self.norm_axis_ok(node, x, -1)
        layout = replace(x.layout, perm=index) if x.layout.kind == "index" else x.layout
        s_x = self.scalar_scale(x, node)
        c = index.shape[-1]
        gamma = self.init(node.input[1]) if len(node.input) > 1 and node.input[1] else None
        beta = self.init(node.input[2]) if len(node.input) > 2 and node.input[2] else np.zeros(c, np.float32)
        if gamma is None or beta is None:
            raise self.fail(node, "LayerNormalization needs constant scale and bias")
        gamma = np.broadcast_to(np.asarray(gamma, np.float32).reshape(-1), (c,))
        beta = np.broadcast_to(np.asarray(beta, np.float32).reshape(-1), (c,))
        eps = float(self.attr(node, "epsilon", 1e-5))
        q, s_out, dtype, qmin, qmax, narrow, mode = self.quantiser_after(node)
        f = LayerNorm.FRAC_BITS
        eps_fix = int(round(256.0 * c * c * eps / (s_x * s_x)))
        bits = int(np.asarray(self.init(q.input[3])).item())
        signed = bool(self.attr(q, "signed", 1))

        def levels(z: np.ndarray) -> np.ndarray:
            y = (z.astype(np.float32) / np.float32(2.0 ** f)) * gamma + beta
            out = quant(y.astype(np.float32), np.float32(s_out), np.float32(0), np.float32(bits), int(signed),
                        int(narrow), mode)
            return np.rint(np.asarray(out, np.float64) / float(s_out)).astype(np.int64)

        zmax = int(math.isqrt(c) + 1) << f
        th = derive_thresholds(levels, np.full(c, -zmax), np.full(c, zmax), qmin, qmax, 1, dtype,
                               f"{self.path}: node '{q.name}'")
        out = self.fresh("t")
        shape = index.shape
        self.add_node(LayerNorm(name=self.fresh("LayerNorm"), inputs=(self.claim(x),), output=out, channels=c,
                                vectors=int(np.prod(shape[:-1])), in_dtype=x.dtype, eps_fix=eps_fix, thresholds=th,
                                gamma=np.array(gamma), beta=np.array(beta), eps=eps),
                      shape, dtype)
        self.done.add(q.name)
        self.publish(q.output[0], out, dtype, s_out, layout)

    def lower_reduce_mean(self, node: NodeProto) -> None:
        """Mean over the tokens (ViT-style pooling): a GlobalAccPool over every vector of the stream; the 1/N goes
        into the next thresholds."""
        x = self.take(node.input[0], node)
        shape = self.shape(node.input[0])
        axes = self.attr(node, "axes", None)
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = self.init(node.input[1])
        rank = len(shape) + 1
        axes = sorted(int(a) % rank for a in np.asarray(axes if axes is not None else range(rank)).reshape(-1))
        index = regrouped(index_of(x.layout, x.onnx_shape), x.onnx_shape)
        if axes != list(range(1, rank - 1)) or index is None:
            raise self.fail(node, f"ReduceMean over axes {axes}: only over every axis but the batch and the last "
                                  "(the mean over tokens)")
        c = x.channels
        vectors = int(np.prod(index.shape[:-1]))
        lo, hi = vectors * x.dtype.min, vectors * x.dtype.max
        dtype = smallest_type(lo, hi)
        out = self.fresh("t")
        unit = GlobalAccPool(name=self.fresh("GlobalAccPool"), inputs=(self.claim(x),), output=out,
                             ifm=(vectors, 1), channels=c, in_dtype=x.dtype, out_dtype=dtype)
        self.add_node(unit, (c,), dtype)
        acc = Accumulator(unit, node.output[0], np.full(c, lo), np.full(c, hi),
                          np.broadcast_to(x.scale, (c,)).astype(np.float64) / vectors, np.zeros(c), fusable=False)
        self.finish(acc, self.next_of(node.output[0]))

    def lower_add_of_constant(self, node: NodeProto) -> None:
        x_in = next(i for i in node.input if i in self.values)
        self.lower_add_constant(node, self.take(x_in, node), next(i for i in node.input if i != x_in))

    def lower_add_constant(self, node: NodeProto, x: Value, const: str) -> None:
        """A quantised tensor plus a quantised constant of the same scale (a learned position embedding): an
        AddConstant node whose table is the constant's integers in stream order."""
        table, s, dtype_t = self.weights(node, const)
        s = np.unique(s)
        if len(s) != 1 or not np.array_equal(np.broadcast_to(x.scale, (1,)), s):
            raise self.fail(node, "a constant added to a quantised tensor must be quantised with the same single "
                                  "scale (share one quantiser)")
        out_shape = self.shape(node.output[0])
        if tuple(out_shape) != tuple(x.onnx_shape):
            raise self.fail(node, "the added constant broadcasts the tensor to a larger shape")
        full = np.broadcast_to(table, (1, *out_shape)).reshape(-1)
        index = index_of(x.layout, x.onnx_shape)
        phys = full[index.reshape(-1)].reshape(-1, x.channels)
        lo, hi = x.dtype.min + int(table.min()), x.dtype.max + int(table.max())
        dtype = smallest_type(lo, hi)
        out = self.fresh("t")
        shape = x.ir_shape
        self.add_node(AddConstant(name=self.fresh("AddConstant"), inputs=(self.claim(x),), output=out,
                                  channels=x.channels, vectors=int(np.prod(shape[:-1])), table=phys, in_dtype=x.dtype,
                                  out_dtype=dtype), shape, dtype)
        self.publish(node.output[0], out, dtype, x.scale, x.layout)

    def static_quant(self, tensor: str) -> bool:
        """True for a quantised constant (a Quant on an initializer), e.g. a position embedding."""
        q = self.model.find_producer(tensor)
        return q is not None and q.op_type in QUANTISERS and self.init(q.input[0]) is not None

    def lower_conv(self, node: NodeProto) -> None:
        x = self.take(node.input[0], node)
        if x.layout.kind != "nhwc":
            raise self.fail(node, "Conv input is not a feature map")
        conv_bias = self.bias(node, node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if self.attr(node, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise self.fail(node, "auto_pad is not supported; export with explicit pads")
        w, s, dtype_w = self.weights(node, node.input[1])
        group = int(self.attr(node, "group", 1))
        # a depthwise layer keeps each channel apart, so a per-channel input scale stays exact
        s_x = np.asarray(x.scale, np.float64) if group > 1 and group == x.channels else self.scalar_scale(x, node)
        if w.ndim == 3:  # Conv1d: a (1, k) kernel over a (1, L) map
            w, s = w[:, :, None, :], s[:, :, None, :]
        if w.ndim != 4:
            raise self.fail(node, f"{w.ndim - 2}-D convolutions are not supported (1-D and 2-D are)")
        cout, cin_g, kh, kw = w.shape
        h, wd, cin = x.ir_shape
        s_row = np.broadcast_to(self.per_row_scale(s.reshape(cout, -1), 1, lambda r: self.fail(node, r)), (cout,))
        dilation = tuple(_as_2d(self.attr(node, "dilations", [1, 1]), 1))
        # a dilated window skips rows and columns of its extent; the SWG reads them from its line buffer
        dilation = (dilation[0] if kh > 1 else 1, dilation[1] if kw > 1 else 1)
        pads = tuple(_as_2d(self.attr(node, "pads", [0, 0, 0, 0]), 0))
        stride = tuple(_as_2d(self.attr(node, "strides", [1, 1]), 1))
        _, oh, ow = chw(self.shape(node.output[0]))
        stream, dtype = self.claim(x), x.dtype
        if any(pads):
            # zero padding: a bipolar stream cannot carry 0, so it widens to a 2-bit signed stream
            dtype = IntType(2, True) if dtype.bipolar else dtype
            stream_p = self.fresh("t")
            pad = Padding(name=self.fresh("Padding"), inputs=(stream,), output=stream_p, ifm=(h, wd), channels=cin,
                          pads=(pads[0], pads[1], pads[2], pads[3]), dtype=dtype)
            self.add_node(pad, (*pad.ofm, cin), dtype)
            stream, (h, wd) = stream_p, pad.ofm
        depthwise = group > 1
        if depthwise and not (group == cin == cout and cin_g == 1):
            raise self.fail(node, f"grouped convolution with group={group} is neither dense nor depthwise")
        pointwise = (kh, kw) == (1, 1) and stride == (1, 1) and not depthwise
        if not pointwise:
            win = self.fresh("t")
            swg = SlidingWindow(name=self.fresh("SlidingWindow"), inputs=(stream,), output=win, ifm=(h, wd),
                                ofm=(oh, ow), channels=cin, kernel=(kh, kw), stride=stride, dtype=dtype,
                                depthwise=depthwise, dilation=(dilation[0], dilation[1]))
            self.add_node(swg, (oh, ow, kh * kw * cin), dtype)
            stream = win
        scale = s_x * s_row
        if depthwise:
            wk = w.reshape(cout, kh * kw)
            lo, hi = self.dot_bounds(wk, dtype, pad_zero=any(pads))
            acc_dtype = smallest_type(int(lo.min()), int(hi.max()))
            out = self.fresh("t")
            unit = VectorVectorUnit(name=self.fresh("VVAU"), inputs=(stream,), output=out, channels=cout,
                                    k=kh * kw, vectors=oh * ow, weights=wk, in_dtype=dtype, w_dtype=dtype_w,
                                    acc_dtype=acc_dtype)
            self.add_node(unit, (oh, ow, cout), acc_dtype)
            offset = np.zeros(cout) if conv_bias is None else np.broadcast_to(conv_bias.reshape(-1), (cout,))
            acc = Accumulator(unit, node.output[0], lo, hi, scale, offset)
            return self.finish(acc, self.next_of(node.output[0]))
        wm = w.transpose(0, 2, 3, 1).reshape(cout, kh * kw * cin)  # columns in the SWG's (kh, kw, c) order
        offset = np.zeros(0) if conv_bias is None else np.broadcast_to(conv_bias.reshape(-1), (cout,))
        self.mvau(node, wm, dtype_w, scale, offset, vectors=oh * ow, out_shape=(oh, ow, cout),
                  in_stream=stream, in_dtype=dtype, pad_zero=any(pads))

    def lower_maxpool(self, node: NodeProto) -> None:
        """Non-overlapping max pooling. Padding (explicit pads, or the partial last windows of ceil_mode) becomes
        zero padding in front, exact for non-negative values: ONNX pads with -inf, and a window always holds at
        least one real value >= 0."""
        x = self.take(node.input[0], node)
        if np.any(x.scale <= 0):
            raise self.fail(node, "MaxPool on a tensor with a non-positive scale")
        kernel = tuple(_as_2d(self.attr(node, "kernel_shape"), 1))
        stride = tuple(_as_2d(self.attr(node, "strides", kernel), 1))
        overlapping = kernel != stride
        if overlapping and (stride[0] > kernel[0] or stride[1] > kernel[1]):
            raise self.fail(node, f"MaxPool {kernel} with stride {stride}: a stride larger than the window skips "
                                  "pixels; use a window at least as large as the stride")
        if not overlapping and kernel[0] != kernel[1] and kernel[0] != 1:
            raise self.fail(node, f"MaxPool {kernel} with stride {stride}: only square (or 1-D) non-overlapping "
                                  "pools, or overlapping ones")
        if any(d != 1 for d in self.attr(node, "dilations", [1])):
            raise self.fail(node, "dilated MaxPool is not supported")
        if x.layout.kind != "nhwc":
            raise self.fail(node, "MaxPool input is not a feature map")
        h, wd, c = x.ir_shape
        _, oh, ow = chw(self.shape(node.output[0]))
        top, left, bottom, right = _as_2d(self.attr(node, "pads", [0, 0, 0, 0]), 0)
        # rows/columns the windows reach beyond the padded map (ceil_mode), padded as well
        bottom += max(0, (oh - 1) * stride[0] + kernel[0] - (top + h + bottom))
        right += max(0, (ow - 1) * stride[1] + kernel[1] - (left + wd + right))
        stream, dtype = self.claim(x), x.dtype
        if any((top, left, bottom, right)):
            # ONNX pads with -inf; the type's minimum is the same for a max (a window holds a real value >= it)
            if dtype.bipolar:
                raise self.fail(node, "MaxPool with padding or ceil_mode on bipolar values: pool without padding")
            padded = self.fresh("t")
            pad = Padding(name=self.fresh("Padding"), inputs=(stream,), output=padded, ifm=(h, wd), channels=c,
                          pads=(top, left, bottom, right), dtype=dtype, value=min(0, int(dtype.min)))
            self.add_node(pad, (*pad.ofm, c), dtype)
            stream, (h, wd) = padded, pad.ofm
        out = self.fresh("t")
        if overlapping:
            # overlapping windows (ResNet's 3x3/2 stem pool): a sliding window emits each window, and a max pool
            # over its kh*kw taps reduces it, a 1-D non-overlapping pool over a map of oh*ow rows of k pixels
            k = kernel[0] * kernel[1]
            win = self.fresh("t")
            self.add_node(SlidingWindow(name=self.fresh("SlidingWindow"), inputs=(stream,), output=win,
                                        ifm=(h, wd), ofm=(oh, ow), channels=c, kernel=kernel, stride=stride,
                                        dtype=dtype, depthwise=True), (oh, ow, k * c), dtype)
            self.add_node(MaxPool(name=self.fresh("MaxPool"), inputs=(win,), output=out, ifm=(oh * ow, k),
                                  ofm=(oh * ow, 1), channels=c, kernel=(1, k), stride=(1, k), dtype=dtype),
                          (oh, ow, c), dtype)
        else:
            self.add_node(MaxPool(name=self.fresh("MaxPool"), inputs=(stream,), output=out, ifm=(h, wd),
                                  ofm=(oh, ow), channels=c, kernel=kernel, stride=stride, dtype=dtype),
                          (oh, ow, c), dtype)
        self.publish(node.output[0], out, dtype, x.scale, x.layout)

    def lower_avgpool(self, node: NodeProto) -> None:
        """k x k average pooling with stride k: a sliding window and a VVAU with all-one weights (the window sum);
        the 1/k**2 and the following Trunc or quantiser become its thresholds."""
        x = self.take(node.input[0], node)
        if x.layout.kind != "nhwc":
            raise self.fail(node, "AveragePool input is not a feature map")
        kernel = tuple(_as_2d(self.attr(node, "kernel_shape"), 1))
        stride = tuple(_as_2d(self.attr(node, "strides", kernel), 1))
        if any(self.attr(node, "pads", [0, 0, 0, 0])) or self.attr(node, "ceil_mode", 0):
            raise self.fail(node, "AveragePool with padding or ceil_mode is not supported")
        h, wd, c = x.ir_shape
        _, oh, ow = chw(self.shape(node.output[0]))
        k = kernel[0] * kernel[1]
        win = self.fresh("t")
        self.add_node(SlidingWindow(name=self.fresh("SlidingWindow"), inputs=(self.claim(x),), output=win, ifm=(h, wd),
                                    ofm=(oh, ow), channels=c, kernel=kernel, stride=stride, dtype=x.dtype,
                                    depthwise=True), (oh, ow, k * c), x.dtype)
        ones = np.ones((c, k), np.int64)
        lo, hi = self.dot_bounds(ones, x.dtype)
        acc_dtype = smallest_type(int(lo.min()), int(hi.max()))
        out = self.fresh("t")
        unit = VectorVectorUnit(name=self.fresh("VVAU"), inputs=(win,), output=out, channels=c, k=k,
                                vectors=oh * ow, weights=ones, in_dtype=x.dtype, w_dtype=IntType(2, True),
                                acc_dtype=acc_dtype)
        self.add_node(unit, (oh, ow, c), acc_dtype)
        scale = np.broadcast_to(x.scale, (c,)).astype(np.float64) / k
        acc = Accumulator(unit, node.output[0], lo, hi, scale, np.zeros(c))
        self.finish(acc, self.next_of(node.output[0]))

    def lower_global_pool(self, node: NodeProto) -> None:
        x = self.take(node.input[0], node)
        h, wd, c = x.ir_shape
        lo, hi = h * wd * x.dtype.min, h * wd * x.dtype.max
        dtype = smallest_type(lo, hi)
        out = self.fresh("t")
        unit = GlobalAccPool(name=self.fresh("GlobalAccPool"), inputs=(self.claim(x),), output=out, ifm=(h, wd),
                             channels=c, in_dtype=x.dtype, out_dtype=dtype)
        self.add_node(unit, (c,), dtype)
        acc = Accumulator(unit, node.output[0], np.full(c, lo), np.full(c, hi),
                          np.broadcast_to(x.scale, (c,)).astype(np.float64) / (h * wd), np.zeros(c), fusable=False)
        self.finish(acc, self.next_of(node.output[0]))

    def lower_add(self, node: NodeProto) -> None:
        a, b = (self.take(i, node) for i in node.input)
        if "index" in (a.layout.kind, b.layout.kind):
            ia, ib = index_of(a.layout, a.onnx_shape), index_of(b.layout, b.onnx_shape)
            same = ordered(ia, ib)
            if a.layout.kind != "index":  # describe the sum like the index-laid-out operand
                a, b = b, a
        else:
            same = a.ir_shape == b.ir_shape and a.layout.kind == b.layout.kind
        if not same:
            raise self.fail(node, "residual Add of tensors with different shapes or element orders")
        sa, sb = np.broadcast_to(a.scale, (a.channels,)), np.broadcast_to(b.scale, (b.channels,))
        if a.channels != b.channels and np.unique(sa).size == 1 == np.unique(sb).size:
            sa, sb = sa[:1], sb[:1]
        if not np.array_equal(sa, sb):
            raise self.fail(node, f"residual Add of tensors with different scales ({float(sa[0]):g} and "
                                  f"{float(sb[0]):g}); quantise both branches with one shared quantiser so that "
                                  "they add as integers")
        lo, hi = a.dtype.min + b.dtype.min, a.dtype.max + b.dtype.max
        dtype = smallest_type(lo, hi)
        shape = a.ir_shape
        out = self.fresh("t")
        unit = AddStreams(name=self.fresh("AddStreams"), inputs=(self.claim(a), self.claim(b)), output=out,
                          channels=shape[-1], vectors=int(np.prod(shape[:-1])), in_dtypes=(a.dtype, b.dtype),
                          out_dtype=dtype)
        self.add_node(unit, shape, dtype)
        # the sum is itself an integer tensor of the same scale: what follows (a quantiser, LayerNorm, another
        # branch) reads it like any quantised tensor
        self.publish(node.output[0], out, dtype, a.scale, a.layout)

    def lower_concat(self, node: NodeProto) -> None:
        """Concat along channels (feature maps) or features (vectors) of quantised tensors: a chain of two-input
        StreamingConcat nodes; the result carries each part's scale per channel (one scale when they agree)."""
        parts = [self.take(i, node) for i in node.input]
        rank = len(self.model.get_tensor_shape(node.output[0]))
        axis = int(self.attr(node, "axis", 1))
        if axis < 0:
            axis += rank
        layouts = {p.layout.kind for p in parts}
        if axis != 1 or len(layouts) != 1 or any(p.layout.perm is not None for p in parts):
            raise self.fail(node, "only Concat along channels (axis 1) of feature maps, or of unpermuted feature "
                                  "vectors, is supported")
        if len({p.ir_shape[:-1] for p in parts}) != 1:
            raise self.fail(node, "Concat of feature maps with different spatial sizes")
        cur = parts[0]
        stream, dtype = self.claim(cur), cur.dtype
        channels = cur.channels
        scales = [np.broadcast_to(cur.scale, (cur.channels,))]
        for p in parts[1:]:
            out_dtype = smallest_type(min(dtype.min, p.dtype.min), max(dtype.max, p.dtype.max))
            if dtype.bipolar and p.dtype.bipolar:
                out_dtype = BIPOLAR
            elif dtype.bipolar or p.dtype.bipolar:
                raise self.fail(node, "Concat of bipolar and integer streams is not supported")
            shape = (*cur.ir_shape[:-1], channels + p.channels)
            out = self.fresh("t")
            self.add_node(StreamingConcat(name=self.fresh("StreamingConcat"), inputs=(stream, self.claim(p)),
                                          output=out, channels=(channels, p.channels),
                                          vectors=int(np.prod(shape[:-1])), in_dtypes=(dtype, p.dtype),
                                          out_dtype=out_dtype), shape, out_dtype)
            stream, dtype, channels = out, out_dtype, channels + p.channels
            scales.append(np.broadcast_to(p.scale, (p.channels,)))
        scale = np.concatenate(scales).astype(np.float64)
        if np.all(scale == scale[0]):
            scale = scale[:1].reshape(())
        self.publish(node.output[0], stream, dtype, scale, parts[0].layout)

    def lower_concat_constant(self, node: NodeProto) -> None:
        """Concat of a (tokens, features) stream and quantised constant rows of its scale along the token axis (a
        ViT's class token): a ConcatConstant node inserting the rows before or after the stream's tokens."""
        x_in = next(i for i in node.input if i in self.values)
        x = self.take(x_in, node)
        consts = [i for i in node.input if i != x_in]
        shape = x.onnx_shape
        axis = int(self.attr(node, "axis", 0)) % (len(shape) + 1)
        if len(node.input) != 2 or len(shape) != 2 or axis != 1:
            raise self.fail(node, "Concat of a stream and a constant: only constant rows joined to a (tokens, "
                                  "features) tensor along the token axis (a class token)")
        table, s, _ = self.weights(node, consts[0])
        s = np.unique(s)
        if len(s) != 1 or not np.array_equal(np.broadcast_to(x.scale, (1,)), s):
            raise self.fail(node, "a constant concatenated to a quantised tensor must be quantised with the same "
                                  "single scale (share one quantiser)")
        tokens, c = shape
        rows = table.reshape(-1, c)
        index = regrouped(index_of(x.layout, shape), shape)
        if index is None:
            raise self.fail(node, "the stream does not carry one whole token per vector here")
        count = len(rows)
        front = node.input[0] != x_in
        at = 0 if front else tokens
        index, rows_at = index.reshape(-1, c), np.arange(count * c).reshape(count, c)
        out_index = np.concatenate([rows_at, index + count * c]) if front else \
            np.concatenate([index, tokens * c + rows_at])
        dtype = smallest_type(min(x.dtype.min, int(rows.min())), max(x.dtype.max, int(rows.max())))
        out = self.fresh("t")
        self.add_node(ConcatConstant(name=self.fresh("ConcatConstant"), inputs=(self.claim(x),), output=out,
                                     channels=c, vectors=tokens, at=at, table=rows, in_dtype=x.dtype,
                                     out_dtype=dtype), (tokens + count, c), dtype)
        self.publish(node.output[0], out, dtype, x.scale, Layout("index", out_index))

    def lower_requant(self, node: NodeProto) -> None:
        """Element-wise ops and a quantiser applied to an already-quantised tensor: a Thresholding node."""
        x = self.take(node.input[0], node)
        c = x.channels
        acc = Accumulator(_Passthrough(self.claim(x)), node.input[0], np.full(c, x.dtype.min),
                          np.full(c, x.dtype.max), np.broadcast_to(x.scale, (c,)).astype(np.float64), np.zeros(c),
                          fusable=False, layout=x.layout if x.layout.kind == "index" else None)
        self.finish(acc, node)

    def lower_layout(self, node: NodeProto) -> None:
        x = self.take(node.input[0], node)
        out_shape = self.shape(node.output[0])
        if node.op_type == "Identity":
            layout = x.layout
        elif len(out_shape) == 1 and x.layout.kind != "index":
            layout = x.layout
            if x.layout.kind == "nhwc":
                c, h, w = chw(x.onnx_shape)
                # IR element (h, w, c) sits at (h*W + w)*C + c and holds QONNX element c*H*W + h*W + w
                idx = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)
                layout = Layout("flat", None if c == 1 or h * w == 1 else idx)
        else:  # tokens, heads: the stream stays as it is, the map from QONNX elements to it changes
            layout = self.move_layout(x.layout, node.input[0], [node])
        stream = self.claim(x)
        self.publish(node.output[0], stream, x.dtype, x.scale, layout, probe=False)

    # ------------------------------------------------------------------ driver
    def run(self) -> DataflowGraph:
        graph_in = self.model.graph.input[0].name
        input_quant, host_ops = self.host_prefix()
        for node in self.model.graph.node:
            if node.name in self.done:
                continue
            op = node.op_type
            if op in QUANTISERS and self.init(node.input[0]) is not None:
                continue  # weight quantiser: read by the layer that uses it
            region = next((self.regions[i] for i in node.input if self.regions.get(i) and
                           self.regions[i][0][0] is node and i in self.values), None)
            if node is input_quant:
                self.lower_input(node, host_ops)
            elif region is not None:
                self.lower_lookup(next(i for i in node.input if self.regions.get(i) is region), *region)
            elif (rule := next((r for r in rules() if op in r.ops and r.applies(self, node)), None)) is not None:
                rule.lower(self, node)
            elif node.input and node.input[0] == graph_in:
                raise self.fail(node, "the model input must go straight into a Quant node (the input quantiser)")
            else:
                raise self.fail(node, f"{op} cannot be lowered to the integer dataflow IR here")
        if self.pre is None:
            raise EdgeError(f"{self.path}: the model input is not quantised; add an input Quant node")
        out_name = self.model.graph.output[0].name
        if self.post is None:
            if out_name not in self.values:
                raise EdgeError(f"{self.path}: the graph output '{out_name}' could not be lowered")
            v = self.values[out_name]
            c = v.channels
            self.final_stream = v.streams[-1]
            self.post = OutputAffine(scale=np.broadcast_to(v.scale, (c,)).astype(np.float64), bias=np.zeros(c),
                                     onnx_shape=v.onnx_shape, layout=v.layout)
            if self.top_k:
                raise EdgeError(f"{self.path}: --top-k needs a model whose output is an unquantised accumulator")
        nodes = tuple(n for n in self.nodes if not isinstance(n, _Passthrough))
        return DataflowGraph(name=self.path.name, nodes=nodes, tensors=self.tensors,
                             input="input", output=self.final_stream, pre=self.pre, post=self.post,
                             probes=self.probes)


def first_in_lowered(lw: Lowering, node: NodeProto) -> bool:
    return bool(node.input) and node.input[0] in lw.values


def _all_in(lw: Lowering, node: NodeProto) -> bool:
    return all(i in lw.values for i in node.input)


def _add_of_constant(lw: Lowering, node: NodeProto) -> bool:
    return len(node.input) == 2 and any(i in lw.values for i in node.input) and \
        any(lw.static_quant(i) for i in node.input)


@dataclass(frozen=True)
class LoweringRule:
    """QONNX ops one `Lowering` method takes (when `applies` holds for the node) and the IR kinds it can make:
    the lowering's half of the per-kind registry, read by `edge inspect` for its verdicts."""

    ops: frozenset[str]
    method: str | Callable[[Lowering, NodeProto], None]  # a Lowering method's name, or a kind module's function
    kinds: tuple[type[Node], ...]
    applies: Callable[[Lowering, NodeProto], bool] = lambda lw, node: True

    def lower(self, lw: Lowering, node: NodeProto) -> None:
        if callable(self.method):
            self.method(lw, node)
        else:
            getattr(lw, self.method)(node)


# tried in order for every node that is not a weight quantiser, the input quantiser or a lookup-table region
RULES: tuple[LoweringRule, ...] = (
    LoweringRule(frozenset({"MatMul", "Gemm"}), "lower_matmul", (MatrixVectorUnit, StreamMatMul)),
    LoweringRule(frozenset({"Conv"}), "lower_conv", (Padding, SlidingWindow, MatrixVectorUnit, VectorVectorUnit)),
    LoweringRule(frozenset({"MaxPool"}), "lower_maxpool", (Padding, SlidingWindow, MaxPool)),
    LoweringRule(frozenset({"GlobalAveragePool"}), "lower_global_pool", (GlobalAccPool,)),
    LoweringRule(frozenset({"AveragePool"}), "lower_avgpool", (SlidingWindow, VectorVectorUnit)),
    LoweringRule(frozenset({"Concat"}), "lower_concat", (StreamingConcat,), _all_in),
    LoweringRule(frozenset({"Concat"}), "lower_concat_constant", (ConcatConstant,), _add_of_constant),
    LoweringRule(frozenset({"Add"}), "lower_add", (AddStreams,), _all_in),
    LoweringRule(frozenset({"Add"}), "lower_add_of_constant", (AddConstant,), _add_of_constant),
    LoweringRule(frozenset({"Softmax"}), "lower_softmax", (Softmax,), first_in_lowered),
    LoweringRule(frozenset({"LayerNormalization"}), "lower_layer_norm", (LayerNorm,), first_in_lowered),
    LoweringRule(frozenset({"ReduceMean"}), "lower_reduce_mean", (GlobalAccPool,), first_in_lowered),
    LoweringRule(LAYOUT_OPS, "lower_layout", (), first_in_lowered),
    LoweringRule(frozenset(QUANTISERS) | CHAIN_OPS, "lower_requant", (Thresholding,), first_in_lowered),
)
# kinds made outside the rules: lookup tables for element-wise regions, fan-out copies, top-k, width converters
# (fpga/width.py)
OTHER_KINDS: dict[type[Node], str] = {
    Lookup: "element-wise ops between two quantisers (" + ", ".join(sorted(LUT_OPS - CHAIN_OPS)[:4]) + ", ...)",
    DuplicateStreams: "a stream read by two layers", LabelSelect: "--top-k on an unquantised output",
}


def rules() -> tuple[LoweringRule, ...]:
    """The kind modules' rules (fpga/kinds/), tried first, then RULES."""
    return (*(r for mod in kind_modules() for r in mod.RULES), *RULES)


def lowered_ops() -> frozenset[str]:
    """Every QONNX op the lowering takes somewhere (the rules, quantisers, element-wise lookup regions)."""
    return frozenset().union(*(r.ops for r in rules())) | frozenset(QUANTISERS) | {"Trunc"} | LUT_OPS


class _Passthrough(Node):
    """Placeholder 'accumulator' for requantising an existing stream (never part of the final graph)."""

    def __init__(self, stream: str) -> None:
        object.__setattr__(self, "name", f"passthrough:{stream}")
        object.__setattr__(self, "inputs", (stream,))
        object.__setattr__(self, "output", stream)
        object.__setattr__(self, "pe", 1)
        object.__setattr__(self, "simd", 1)


def chw(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(C, H, W) of a feature map; a 1-D map (C, L) is (C, 1, L)."""
    if len(shape) == 2:
        return shape[0], 1, shape[1]
    c, h, w = shape
    return c, h, w


def _as_2d(values: list[int] | tuple[int, ...], fill: int) -> list[int]:
    """A 1-D kernel attribute (k,) or pads (b, e) as the 2-D one with a unit H axis."""
    v = [int(x) for x in values]
    if len(v) == 1:
        return [fill, v[0]]
    if len(v) == 2 and fill == 0:  # pads: begin, end -> top, left, bottom, right
        return [0, v[0], 0, v[1]]
    return v


def index_of(layout: Layout, onnx_shape: tuple[int, ...]) -> np.ndarray:
    """A value's layout as an index array: for each IR element (in the stream's shape), the QONNX flat element."""
    if layout.kind == "index":
        return layout.perm
    if layout.kind == "nhwc":
        c, h, w = chw(onnx_shape)
        return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0)
    n = int(np.prod(onnx_shape))
    return np.asarray(layout.perm) if layout.perm is not None else np.arange(n)


def moved(index: np.ndarray, in_shape: tuple[int, ...], perm: list[int] | None) -> np.ndarray:
    """The index array after a Transpose (per-sample axes `perm`) or, with perm None, a reshape (flat order kept)."""
    if perm is None:
        return index
    n = int(np.prod(in_shape))
    old_of_new = np.arange(n).reshape(in_shape).transpose(perm).reshape(-1)
    inv = np.empty(n, np.int64)
    inv[old_of_new] = np.arange(n)
    return inv[index]


def channels_last(index: np.ndarray, onnx_shape: tuple[int, ...]) -> bool:
    """True when the stream's channels are the QONNX tensor's last axis, in order (tokens x features)."""
    c = index.shape[-1]
    return bool(onnx_shape) and onnx_shape[-1] == c and np.array_equal(
        index - index[..., :1], np.broadcast_to(np.arange(c), index.shape)) and bool(np.all(index[..., 0] % c == 0))


def regrouped(index: np.ndarray, onnx_shape: tuple[int, ...]) -> np.ndarray | None:
    """The index array re-described with the tensor's last axis as channels (same stream order), when the stream
    carries that axis contiguously and in order; else None. A stream's shape is only a description of its order."""
    c = onnx_shape[-1] if onnx_shape else 0
    if not c or index.size % c:
        return None
    grouped = index.reshape(-1, c) if index.shape[-1] != c else index
    return grouped if channels_last(grouped, onnx_shape) else None


def ordered(index: np.ndarray, expected: np.ndarray) -> bool:
    return index.size == expected.size and np.array_equal(index.reshape(-1), expected.reshape(-1))


def _with_thresholds(node: Node, th: Thresholds) -> Node:
    return replace(node, thresholds=th)


def lower(loaded: LoadedModel, top_k: int = 0) -> DataflowGraph:
    """QONNX model -> integer dataflow IR (raises EdgeError naming the node for anything not exact)."""
    return Lowering(loaded, top_k).run()
