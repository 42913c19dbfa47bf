"""QONNX -> standard QDQ ONNX: weights as int8 initializers with DequantizeLinear (per-channel where the QAT
scales are), activation quantisers as QuantizeLinear/DequantizeLinear pairs with a Clip for ranges narrower than
8 bits. Scales are the QAT scales, unchanged: nothing is recalibrated."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from qonnx.custom_op.general.quant import quant

from edge.export.kernel_paths import ARM_INT16_PAIRS as ARM
from edge.export.kernel_paths import U8S8_PAIRS as U8S8
from edge.export.kernel_paths import LayerPaths, layer_paths, u8_operand_max
from frontend.errors import EdgeError
from frontend.qonnx_io import LoadedModel

MIN_OPSET = 13  # per-axis DequantizeLinear
# ops between an activation quantiser and the layer that reads it which keep its integer range
RANGE_KEEPING = frozenset({"Flatten", "Reshape", "MaxPool", "Pad", "Transpose", "Identity", "Squeeze", "Unsqueeze",
                           "DepthToSpace", "Resize", "Upsample"})


def _attr(node: onnx.NodeProto, name: str, default):
    for a in node.attribute:
        if a.name == name:
            v = helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


def _qrange(bits: int, signed: bool, narrow: bool) -> tuple[int, int]:
    if signed:
        return -(1 << (bits - 1)) + int(narrow), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1 - int(narrow)


def fake_quant_safe_scale(s: np.ndarray, qmax: int) -> np.ndarray:
    """The float32 scale (within a few ulps of s) whose FakeQuantize range float32(qmax * s) / qmax is the
    smallest one not below s.

    OpenVINO turns Q/DQ into FakeQuantize with range limits qmax * s rounded to float32 and divides by the range:
    for 1/255 that range is exactly 1.0, so an input of 0.5 lands on 127.5 and rounds up, where x / s (s being
    float32(1/255), slightly above 1/255) rounds down. A range never below qmax * s keeps OpenVINO on the golden
    model's side of such ties."""
    s = np.float32(s)
    best = s
    cand = s
    for _ in range(4):
        if np.float64(np.float32(np.float32(qmax) * cand)) / qmax >= np.float64(s):
            return np.asarray(cand, np.float32)
        cand = np.nextafter(cand, np.float32(np.inf), dtype=np.float32)
    return np.asarray(best, np.float32)


class QdqConverter:
    def __init__(self, loaded: LoadedModel, target: str, int8_only: bool = False) -> None:
        self.int8_only = int8_only  # TensorRT: symmetric int8 Q/DQ only (no uint8)
        self.reduced: list[str] = []
        self.notes: list[str] = []
        self.act_outputs: set[str] = set()
        self.loaded = loaded
        self.model = loaded.model
        self.target = target
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[TensorProto] = []
        self.widened: list[str] = []
        self.paths: list[LayerPaths] = []
        self.kernel_notes: list[str] = []

    def fail(self, node: onnx.NodeProto, reason: str) -> EdgeError:
        return EdgeError(f"{self.loaded.path}: node '{node.name}' ({node.op_type}) cannot go to {self.target}: "
                         f"{reason}")

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def quant_params(self, node: onnx.NodeProto) -> tuple[np.ndarray, int, bool, bool]:
        scale, zp, bits = (self.model.get_initializer(node.input[i]) for i in (1, 2, 3))
        if scale is None or zp is None or bits is None:
            raise self.fail(node, "scale, zero-point and bit width must be constants")
        if np.any(zp != 0):
            raise self.fail(node, "non-zero zero-points are not supported")
        if _attr(node, "rounding_mode", "ROUND") != "ROUND":
            raise self.fail(node, "only ROUND (half to even) maps onto QuantizeLinear")
        nbits = int(np.asarray(bits).item())
        if nbits > 8:
            raise self.fail(node, f"{nbits}-bit values do not fit int8")
        return np.asarray(scale, np.float32), nbits, bool(_attr(node, "signed", 1)), bool(_attr(node, "narrow", 0))

    def weight(self, node: onnx.NodeProto) -> None:
        w = self.model.get_initializer(node.input[0]).astype(np.float32)
        scale, bits, signed, narrow = self.quant_params(node)
        y = quant(w, scale, np.float32(0), np.float32(bits), int(signed), int(narrow), "ROUND")
        q = np.rint(np.asarray(y, np.float64) / np.broadcast_to(scale, w.shape)).astype(np.int8)
        out = node.output[0]
        if scale.size == 1:
            s, zp, axis = scale.reshape(()), np.zeros((), np.int8), None
        else:
            varying = [i for i, d in enumerate(scale.shape) if d != 1]
            if len(varying) != 1:
                raise self.fail(node, f"weight scale of shape {scale.shape} is neither per-tensor nor per-channel")
            axis = varying[0]
            s, zp = scale.reshape(-1), np.zeros(scale.size, np.int8)
        if bits < 8:
            self.widened.append(f"{node.name}: {bits}-bit weights held in int8")
        stored, stored_zp, suffix = q, zp, "int8"
        rows = self.weight_rows(node, q)
        if rows is not None:
            layer, wr, u8_max = rows
            paths = layer_paths(layer, wr, u8_max)
            if not paths.exact[U8S8] and not self.int8_only:
                # uint8 weights around zero point 128 hold the same integers; runtimes then take their u8*u8 kernels
                # (int16 operands, int32 sums) instead of the saturating u8*s8 pairs
                stored = (q.astype(np.int16) + 128).astype(np.uint8)
                stored_zp, suffix = np.full(zp.shape, 128, np.uint8), "uint8"
                self.kernel_notes.append(f"{layer}: a u8*s8 pair can reach {paths.worst_pair} > 32767 on x86 "
                                         "without VNNI; weights stored as uint8 with zero point 128")
                paths = LayerPaths(layer, u8_max, paths.worst_pair, paths.min_weight,
                                   {**paths.exact, U8S8: True, ARM: True})
            self.paths.append(paths)
        args = [self.const(f"{out}_{suffix}", stored), self.const(f"{out}_scale", s),
                self.const(f"{out}_zp", stored_zp)]
        kwargs = {"axis": axis} if axis is not None else {}
        self.nodes.append(helper.make_node("DequantizeLinear", args, [out], name=f"{node.name}_dq", **kwargs))

    def is_bias(self, node: onnx.NodeProto) -> bool:
        """A quantised constant wider than 8 bits that only feeds biases (Brevitas' Int32Bias): of a Conv or Gemm,
        or the Add after a MatMul (a Linear on a sequence)."""
        bits = self.model.get_initializer(node.input[3])
        users = self.model.find_consumers(node.output[0]) or []
        return (bits is not None and int(np.asarray(bits).item()) > 8 and bool(users) and
                all((u.op_type in ("Conv", "Gemm") and len(u.input) > 2 and u.input[2] == node.output[0])
                    or u.op_type == "Add" for u in users))

    def bias(self, node: onnx.NodeProto) -> None:
        """An int32 bias as standard QDQ: DequantizeLinear of int32 (scale = input scale x weight scale), exactly the
        values QONNX's Quant gives."""
        b = self.model.get_initializer(node.input[0]).astype(np.float32)
        scale, zp, bits = (self.model.get_initializer(node.input[i]) for i in (1, 2, 3))
        nbits = int(np.asarray(bits).item())
        if scale is None or zp is None or np.any(zp != 0) or nbits > 32 or not _attr(node, "signed", 1):
            raise self.fail(node, "a bias must be signed, at most 32 bits, with a constant scale and zero-point 0")
        scale = np.asarray(scale, np.float32)
        y = quant(b, scale, np.float32(0), np.float32(nbits), 1, int(_attr(node, "narrow", 0)), "ROUND")
        q = np.rint(np.asarray(y, np.float64) / np.broadcast_to(scale, b.shape)).astype(np.int32).reshape(-1)
        s = scale.reshape(-1)
        out = node.output[0]
        args = [self.const(f"{out}_int32", q), self.const(f"{out}_scale", s if s.size > 1 else s.reshape(())),
                self.const(f"{out}_zp", np.zeros(s.shape if s.size > 1 else (), np.int32))]
        kwargs = {"axis": 0} if s.size > 1 else {}
        self.nodes.append(helper.make_node("DequantizeLinear", args, [out], name=f"{node.name}_dq", **kwargs))

    def input_u8_max(self, tensor: str) -> int:
        """The largest u8 operand a pair kernel sees for this layer input: the unsigned quantiser's top (stored as
        uint8 from zero), else 255 (signed int8 enters as x + 128; an unknown producer is taken at its worst)."""
        producer = self.model.find_producer(tensor)
        while producer is not None and producer.op_type in RANGE_KEEPING:
            producer = self.model.find_producer(producer.input[0])
        if producer is None or producer.op_type != "Quant":
            return 255
        bits = self.model.get_initializer(producer.input[3])
        if bits is None or _attr(producer, "signed", 1):
            return 255
        _, qmax = _qrange(int(np.asarray(bits).item()), False, bool(_attr(producer, "narrow", 0)))
        if self.int8_only or qmax > 255:
            return 255
        return u8_operand_max(0, qmax, stored_unsigned=True)

    def weight_rows(self, node: onnx.NodeProto, q: np.ndarray) -> tuple[str, np.ndarray, int] | None:
        """(layer name, integer weights with one row per output, its input's largest u8 operand) for the Conv,
        MatMul or Gemm that reads this weight quantiser; None for any other consumer."""
        users = [u for u in self.model.find_consumers(node.output[0]) or [] if u.op_type in ("Conv", "MatMul", "Gemm")]
        if len(users) != 1 or len(users[0].input) < 2 or users[0].input[1] != node.output[0]:
            return None
        user = users[0]
        w = q.astype(np.int64)
        if user.op_type == "Conv" or user.op_type == "Gemm" and _attr(user, "transB", 0):
            rows = w.reshape(len(w), -1)
        else:
            rows = w.reshape(w.shape[0], -1).T
        return user.name, rows, self.input_u8_max(user.input[0])

    def activation(self, node: onnx.NodeProto) -> None:
        scale, bits, signed, narrow = self.quant_params(node)
        axis: int | None = None
        if scale.size == 1:
            s = scale.reshape(())
        else:  # per-channel activation scales (brevitas_examples' MobileNet): QuantizeLinear along that axis
            rank = len(self.model.get_tensor_shape(node.input[0]) or scale.shape)
            varying = [i for i, d in enumerate(scale.shape) if d != 1]
            if len(varying) != 1:
                raise self.fail(node, f"activation scale of shape {scale.shape} is neither per-tensor nor "
                                      "per-channel")
            axis = varying[0] + rank - scale.ndim
            s = scale.reshape(scale.shape[varying[0]], *([1] * (rank - 1 - axis)))  # broadcasts along axis
        qmin, qmax = _qrange(bits, signed, narrow)
        kind = f"{bits}-bit {'signed' if signed else 'unsigned'}"
        offset: np.ndarray | None = None
        if self.int8_only and not signed:
            if qmax > 127 and node.input[0] == self.model.graph.input[0].name:
                # the model input: shift [0, 255] to [-128, 127] around Q/DQ (exact; integers shift exactly)
                offset = (np.float32(128) * s).astype(np.float32)
                qmin, qmax = -128, 127
                self.notes.append(f"{node.name}: 8-bit unsigned input quantised as int8 around an offset of "
                                    "128 steps (exact; the first layer's input is offset in float)")
            elif qmax > 127:  # 8-bit unsigned: int8 keeps 7 of its bits at twice the step
                s = s * np.float32(2)
                qmax = 127
                self.reduced.append(f"{node.name}: 8-bit unsigned activations requantised to 7 bits at twice the "
                                    "scale (TensorRT takes symmetric int8 only)")
            signed = True  # [0, qmax] sits inside int8 exactly; the Clip keeps the unsigned range
        full = (-128, 127) if signed else (0, 255)
        x = node.input[0]
        out = node.output[0]
        producer = self.model.find_producer(x)
        if self.target == "openvino" and producer is not None and producer.op_type in ("Mul", "Add", "Sub", "Div"):
            # OpenVINO folds an element-wise op in front of a FakeQuantize into its input range, which rounds
            # differently from the float32 op; a Max with the lowest float computes nothing but keeps them apart
            lowest = self.const(f"{out}_lowest", np.float32(np.finfo(np.float32).min))
            self.nodes.append(helper.make_node("Max", [x, lowest], [f"{out}_unfused"], name=f"{node.name}_unfuse"))
            x = f"{out}_unfused"
        if offset is not None:
            off = self.const(f"{out}_offset", offset)
            self.nodes.append(helper.make_node("Sub", [x, off], [f"{out}_shifted"], name=f"{node.name}_shift"))
            x = f"{out}_shifted"
        if (qmin, qmax) != full:
            # a narrower integer range than int8/uint8: clip first, so QuantizeLinear's saturation is never hit
            lo = self.const(f"{out}_clip_lo", (np.float32(qmin) * s).astype(np.float32))
            hi = self.const(f"{out}_clip_hi", (np.float32(qmax) * s).astype(np.float32))
            if axis is None:
                self.nodes.append(helper.make_node("Clip", [x, lo, hi], [f"{out}_clipped"],
                                                   name=f"{node.name}_clip"))
            else:  # Clip takes scalar bounds only: per-channel bounds as Max then Min
                self.nodes.append(helper.make_node("Max", [x, lo], [f"{out}_above"], name=f"{node.name}_clip_lo"))
                self.nodes.append(helper.make_node("Min", [f"{out}_above", hi], [f"{out}_clipped"],
                                                   name=f"{node.name}_clip_hi"))
            x = f"{out}_clipped"
            self.widened.append(f"{node.name}: {kind} activations held in {'int8' if signed else 'uint8'} "
                                f"(clipped to [{qmin}, {qmax}])")
        zp_shape = () if axis is None else (s.size,)
        zp = self.const(f"{out}_zp", np.zeros(zp_shape, np.int8 if signed else np.uint8))
        if self.target == "openvino":
            s = np.asarray([fake_quant_safe_scale(v, max(abs(qmin), abs(qmax))) for v in s.reshape(-1)],
                           np.float32).reshape(s.shape)
        sc = self.const(f"{out}_scale", s.reshape(zp_shape))
        attrs = {} if axis is None else {"axis": axis}
        self.act_outputs.add(out)
        self.nodes.append(helper.make_node("QuantizeLinear", [x, sc, zp], [f"{out}_q"], name=f"{node.name}_q",
                                           **attrs))
        if offset is not None:
            self.nodes.append(helper.make_node("DequantizeLinear", [f"{out}_q", sc, zp], [f"{out}_dq"],
                                               name=f"{node.name}_dq", **attrs))
            self.nodes.append(helper.make_node("Add", [f"{out}_dq", f"{out}_offset"], [out],
                                               name=f"{node.name}_unshift"))
        else:
            self.nodes.append(helper.make_node("DequantizeLinear", [f"{out}_q", sc, zp], [out],
                                               name=f"{node.name}_dq", **attrs))

    def bipolar_scale(self, node: onnx.NodeProto) -> np.ndarray:
        scale = self.model.get_initializer(node.input[1])
        if scale is None:
            raise self.fail(node, "the bipolar scale must be a constant")
        return np.asarray(scale, np.float32)

    def bipolar_weight(self, node: onnx.NodeProto) -> None:
        """Binary weights: +-1 in int8 (exact), with the BipolarQuant scale per tensor or per channel."""
        w = self.model.get_initializer(node.input[0])
        scale = self.bipolar_scale(node)
        q = np.where(w >= 0, 1, -1).astype(np.int8)
        out = node.output[0]
        if scale.size == 1:
            s, zp, kwargs = scale.reshape(()), np.zeros((), np.int8), {}
        else:
            varying = [i for i, d in enumerate(scale.shape) if d != 1]
            if len(varying) != 1:
                raise self.fail(node, f"weight scale of shape {scale.shape} is neither per-tensor nor per-channel")
            s, zp, kwargs = scale.reshape(-1), np.zeros(scale.size, np.int8), {"axis": varying[0]}
        self.widened.append(f"{node.name}: bipolar weights held in int8 as -1/+1")
        rows = self.weight_rows(node, q)
        if rows is not None:
            self.paths.append(layer_paths(*rows))
        args = [self.const(f"{out}_int8", q), self.const(f"{out}_scale", s), self.const(f"{out}_zp", zp)]
        self.nodes.append(helper.make_node("DequantizeLinear", args, [out], name=f"{node.name}_dq", **kwargs))

    def bipolar_activation(self, node: onnx.NodeProto) -> None:
        """sign(x) with sign(0) = +1 as BipolarQuant defines it: GreaterOrEqual and Where pick +-scale exactly,
        then a Q/DQ pair holds the result as int8 -1/+1 so that the next layer runs in int8."""
        scale = self.bipolar_scale(node)
        if scale.size != 1:
            raise self.fail(node, "activation scales must be per-tensor")
        s = scale.reshape(())
        out = node.output[0]
        zero, pos, neg = (self.const(f"{out}_{k}", np.float32(v)) for k, v in (("zero", 0), ("pos", s), ("neg", -s)))
        self.nodes.append(helper.make_node("GreaterOrEqual", [node.input[0], zero], [f"{out}_nonneg"],
                                           name=f"{node.name}_ge"))
        self.nodes.append(helper.make_node("Where", [f"{out}_nonneg", pos, neg], [f"{out}_sign"],
                                           name=f"{node.name}_where"))
        zp, sc = self.const(f"{out}_zp", np.zeros((), np.int8)), self.const(f"{out}_scale", s)
        self.act_outputs.add(out)
        self.widened.append(f"{node.name}: bipolar activations held in int8 as -1/+1")
        self.nodes.append(helper.make_node("QuantizeLinear", [f"{out}_sign", sc, zp], [f"{out}_q"],
                                           name=f"{node.name}_q"))
        self.nodes.append(helper.make_node("DequantizeLinear", [f"{out}_q", sc, zp], [out], name=f"{node.name}_dq"))

    def trunc(self, node: onnx.NodeProto) -> None:
        """QONNX Trunc (Brevitas' truncating average pool) as the float32 operations qonnx executes, in order:
        element-wise float ops are deterministic, so every runtime computes what the golden model does."""
        consts = [self.model.get_initializer(i) for i in node.input[1:]]
        if any(c is None for c in consts):
            raise self.fail(node, "Trunc parameters must be constants")
        scale, zp, in_bits = (np.asarray(c, np.float32) for c in consts[:3])
        mode = str(_attr(node, "rounding_mode", "FLOOR")).upper()
        rounding = {"FLOOR": "Floor", "CEIL": "Ceil", "ROUND": "Round"}.get(mode)
        if rounding is None:
            raise self.fail(node, f"Trunc rounding mode {mode} is not one of FLOOR, CEIL, ROUND")
        if len(consts) == 5:  # Trunc v2: output scale and bit width; clamps to the output range
            out_scale, out_bits = (np.asarray(c, np.float32) for c in consts[3:])
            ts = np.asarray(2 ** np.round(np.log2(out_scale / scale)), np.float32)
            signed, narrow = int(_attr(node, "signed", 1)), int(_attr(node, "narrow", 0))
            qmin, qmax = _qrange(int(np.asarray(out_bits).item()), bool(signed), bool(narrow))
            bounds: tuple[float, float] | None = (qmin, qmax)
        else:  # v1: truncation by the bit-width difference, output at the input scale
            ts = np.asarray(2.0 ** (in_bits - np.asarray(consts[3], np.float32)), np.float32)
            out_scale, bounds = scale, None
        name, x = node.name or node.output[0], node.input[0]

        def step(op: str, *args: str) -> str:
            y = f"{node.output[0]}_{op.lower()}{len(self.nodes)}"
            self.nodes.append(helper.make_node(op, list(args), [y], name=f"{name}_{op.lower()}{len(self.nodes)}"))
            return y

        y = step("Div", x, self.const(f"{name}_scale", scale))
        y = step("Add", y, self.const(f"{name}_zp", zp))
        y = step("Round", y)
        y = step("Div", y, self.const(f"{name}_trunc_scale", ts))
        if bounds is not None:
            y = step("Min", y, self.const(f"{name}_max", np.float32(bounds[1])))
            y = step("Max", y, self.const(f"{name}_min", np.float32(bounds[0])))
        y = step(rounding, y)
        y = step("Sub", y, self.const(f"{name}_out_zp", (zp / ts).astype(np.float32)))
        self.nodes.append(helper.make_node("Mul", [y, self.const(f"{name}_out_scale", out_scale)], [node.output[0]],
                                           name=f"{name}_rescale"))
        self.notes.append(f"{name}: Trunc written as the float32 operations the golden model executes")

    def float_pool(self, node: onnx.NodeProto) -> None:
        """OpenVINO runs an average pool of int8 data in u8 and rounds the mean to an integer (measured: 7.5 output
        LSB on brevitas_examples' MobileNet-v1, whose Trunc wants the float mean). A Max with the lowest float32
        in front computes nothing but keeps the pool in f32, as the golden model computes it."""
        floor = self.const(f"{node.name}_floor", np.float32(np.finfo(np.float32).min))
        x = node.input[0]
        self.nodes.append(helper.make_node("Max", [x, floor], [f"{x}_f32"], name=f"{node.name}_unfuse"))
        pool = onnx.NodeProto()
        pool.CopyFrom(node)
        pool.input[0] = f"{x}_f32"
        self.nodes.append(pool)

    def residual_add(self, node: onnx.NodeProto) -> None:
        """OpenVINO's CPU plugin fuses `conv -> BN -> Q/DQ -> Add(skip) -> ReLU -> Q/DQ` into one convolution whose
        post-op chain loses the inner requantisation (measured: top-1 99.2% vs the golden model on resnet w4a4).
        A Max with the lowest float32 on each Add input computes nothing but stops that fusion; the convolutions
        stay int8."""
        floor = self.const(f"{node.name}_floor", np.float32(np.finfo(np.float32).min))
        inputs = []
        for i, x in enumerate(node.input):
            self.nodes.append(helper.make_node("Max", [x, floor], [f"{x}_unfused{i}"], name=f"{node.name}_unfuse{i}"))
            inputs.append(f"{x}_unfused{i}")
        add = onnx.NodeProto()
        add.CopyFrom(node)
        del add.input[:]
        add.input.extend(inputs)
        self.nodes.append(add)

    def run(self) -> onnx.ModelProto:
        for node in self.model.graph.node:
            if (self.target == "openvino" and node.op_type == "Add" and len(node.input) == 2
                    and all(i in self.act_outputs for i in node.input)):
                self.residual_add(node)
                continue
            if self.target == "openvino" and node.op_type in ("AveragePool", "GlobalAveragePool"):
                self.float_pool(node)
                continue
            if node.op_type == "BipolarQuant":
                if self.model.get_initializer(node.input[0]) is not None:
                    self.bipolar_weight(node)
                else:
                    self.bipolar_activation(node)
                continue
            if node.op_type == "Trunc":
                self.trunc(node)
                continue
            if node.op_type == "Quant":
                if self.model.get_initializer(node.input[0]) is not None and self.is_bias(node):
                    self.bias(node)
                elif self.model.get_initializer(node.input[0]) is not None:
                    self.weight(node)
                else:
                    self.activation(node)
                continue
            self.nodes.append(node)
        g = self.model.graph
        used = {i for n in self.nodes for i in n.input}
        inits = [i for i in g.initializer if i.name in used] + self.inits
        graph = helper.make_graph(self.nodes, g.name or "edge_qdq", list(g.input), list(g.output), inits)
        opset = max([o.version for o in self.model.model.opset_import if o.domain in ("", "ai.onnx")] + [MIN_OPSET])
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                  producer_name="edge", producer_version="qdq")
        proto.ir_version = min(proto.ir_version, 9)  # readable by every onnxruntime and OpenVINO here
        del proto.graph.input[1:]  # initializers are not graph inputs
        _expand_batch_constants(proto)
        proto = onnx.shape_inference.infer_shapes(proto)
        onnx.checker.check_model(proto)
        return proto


def _expand_batch_constants(proto: onnx.ModelProto) -> None:
    """A batch-1 constant that a Concat joins to activations along another axis (a class token, its batch Expand
    folded when the model was traced at batch 1; here a DequantizeLinear of constant integers) is expanded to the
    batch of the activation beside it (Shape, Slice, Concat, Expand): the QDQ model runs at any batch size."""
    inits = {t.name: t for t in proto.graph.initializer}
    producers = {o: n for n in proto.graph.node for o in n.output}

    def constant(name: str) -> np.ndarray | None:
        if name in inits:
            return numpy_helper.to_array(inits[name])
        q = producers.get(name)
        if q is not None and q.op_type == "DequantizeLinear" and q.input[0] in inits:
            return numpy_helper.to_array(inits[q.input[0]])
        return None

    for node in list(proto.graph.node):
        if node.op_type != "Concat" or all(constant(i) is not None for i in node.input):
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        source = next(i for i in node.input if constant(i) is None)
        for k, name in enumerate(node.input):
            value = constant(name)
            if value is None or value.ndim < 2 or value.shape[0] != 1 or axis % value.ndim == 0:
                continue
            tag = f"{node.name or node.output[0]}/in{k}_batch"
            rest = numpy_helper.from_array(np.asarray(value.shape[1:], np.int64), f"{tag}/rest")
            begin = numpy_helper.from_array(np.asarray([0], np.int64), f"{tag}/begin")
            end = numpy_helper.from_array(np.asarray([1], np.int64), f"{tag}/end")
            proto.graph.initializer.extend([rest, begin, end])
            new = [helper.make_node("Shape", [source], [f"{tag}/shape"], name=f"{tag}/Shape"),
                   helper.make_node("Slice", [f"{tag}/shape", begin.name, end.name], [f"{tag}/n"],
                                    name=f"{tag}/Slice"),
                   helper.make_node("Concat", [f"{tag}/n", rest.name], [f"{tag}/target"], name=f"{tag}/Concat",
                                    axis=0),
                   helper.make_node("Expand", [name, f"{tag}/target"], [f"{tag}/out"], name=f"{tag}/Expand")]
            at = list(proto.graph.node).index(node)
            for j, n in enumerate(new):
                proto.graph.node.insert(at + j, n)
            node.input[k] = f"{tag}/out"


def to_qdq(loaded: LoadedModel, target: str = "onnx") -> tuple[onnx.ModelProto, list[str], QdqConverter]:
    """The QDQ ONNX model, the places where precision is widened (k-bit values held in int8), and the converter
    (its `paths` and `kernel_notes` say how each int8 layer fares on every kernel path)."""
    conv = QdqConverter(loaded, target)
    return conv.run(), conv.widened, conv


def to_tensorrt_qdq(loaded: LoadedModel) -> tuple[onnx.ModelProto, list[str], list[str], list[str]]:
    """QDQ ONNX in TensorRT's explicit-quantisation form: every Q/DQ symmetric int8 (zero point 0).

    Returns the model, where precision is widened, where it is reduced (8-bit unsigned activations), and notes
    on exact rewrites (the offset 8-bit input)."""
    conv = QdqConverter(loaded, "tensorrt", int8_only=True)
    proto = conv.run()
    return proto, conv.widened, conv.reduced, conv.notes
