"""The int8 program of the TFLite writer, emitted as QDQ ONNX (NCHW) instead of a flatbuffer.

`TfliteWriter` plans every layer from the exact integer IR (fitted per-channel requantisation, zero points that
make RELU and saturation clamp); this builder takes the same calls and writes each op in the standard Q/DQ
pattern `DequantizeLinear -> op -> QuantizeLinear`. Runtimes that execute Q/DQ with int8 kernels (OpenVINO)
then requantise through the fitted multipliers, whose margin from every rounding boundary absorbs their float
arithmetic: the int8 activations stay equal to the IR's integers instead of depending on the runtime's way of
folding BatchNorm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edge.export.tflite_model import PADDING_SAME, Quant

NP_TO_ONNX = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int8): TensorProto.INT8,
              np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.int32): TensorProto.INT32,
              np.dtype(np.bool_): TensorProto.BOOL}
ELEMENTWISE = {"MUL": "Mul", "ADD": "Add", "SUB": "Sub", "DIV": "Div"}


@dataclass
class _Tensor:
    name: str
    shape: tuple[int, ...]  # TFLite (NHWC) shape, batch first
    dtype: np.dtype
    quant: Quant | None
    data: np.ndarray | None
    flat_from: tuple[int, int, int] | None = None  # a flattened NHWC (H, W, C) map, now in ONNX's C, H, W order


def _nchw(shape: tuple[int, ...]) -> list[int]:
    return [shape[0], shape[3], shape[1], shape[2]] if len(shape) == 4 else list(shape)


class OnnxInt8Builder:
    """Same interface as TfliteModelBuilder (tensor, const, op, inputs, outputs, serialize)."""

    # the float last layer keeps int8 weights with per-row scales: runtimes then run it as an int8 Gemm with a
    # float output instead of a float Gemm (which OpenVINO's default CPU precision would run in bf16)
    int8_weights_in_float_layers = True
    # OpenVINO and onnxruntime run u8*s8 products on the saturating pair path on x86 without VNNI (kernel_paths)
    u8s8_pair_path = True

    def __init__(self, input_scale_fn: Any = None) -> None:
        self.t: list[_Tensor] = []
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[TensorProto] = []
        self.inputs: list[int] = []
        self.outputs: list[int] = []
        self.float_of: dict[int, str] = {}
        self.params: dict[int, tuple[str, str]] = {}
        self.input_scale_fn = input_scale_fn  # adjusts the model-input QuantizeLinear scale (OpenVINO)
        self.uint8_weights: set[str] = set()  # weight constants to store as uint8 around zero point 128
        self.raw_shape: tuple[int, ...] = ()  # the model input's own per-sample shape, when it is reshaped
        self.preprocessed: set[int] = set()  # float tensors computed by the input preprocessing

    # ------------------------------------------------------------------ builder interface
    def tensor(self, name: str, shape: tuple[int, ...], dtype: type, quant: Quant | None = None,
               data: np.ndarray | None = None) -> int:
        self.t.append(_Tensor(name, tuple(shape), np.dtype(dtype), quant, data))
        return len(self.t) - 1

    def const(self, name: str, data: np.ndarray, quant: Quant | None = None) -> int:
        return self.tensor(name, tuple(data.shape), data.dtype.type, quant, np.asarray(data))

    def op(self, kind: str, inputs: list[int], outputs: list[int], options: Any = None) -> None:
        if kind in ELEMENTWISE:
            return self._elementwise(ELEMENTWISE[kind], inputs, outputs[0])
        getattr(self, f"_{kind.lower()}")(inputs, outputs[0], options)

    def raw_input(self, x: int, raw_shape: tuple[int, ...]) -> None:
        """The graph input keeps the model's own shape; a Reshape to the quantiser's shape comes first."""
        self.raw_shape = tuple(raw_shape)
        self.t[x].name = "input/reshaped"

    def serialize(self, description: str) -> bytes:
        def info(i: int) -> onnx.ValueInfoProto:
            t = self.t[i]
            shape = ["batch", *_nchw(t.shape)[1:]]
            return helper.make_tensor_value_info(t.name, NP_TO_ONNX[t.dtype], shape)

        inputs = [info(i) for i in self.inputs]
        if self.raw_shape:
            target = self.init("input/shape", np.asarray([-1, *_nchw(self.t[self.inputs[0]].shape)[1:]], np.int64))
            self.nodes.insert(0, helper.make_node("Reshape", ["input", target], [self.t[self.inputs[0]].name],
                                                  name="input/Reshape"))
            inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", *self.raw_shape])]
        graph = helper.make_graph(self.nodes, "edge_int8", inputs,
                                  [info(i) for i in self.outputs], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="edge",
                                  producer_version="int8-qdq", doc_string=description)
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model.SerializeToString()

    # ------------------------------------------------------------------ helpers
    def init(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=f"{output}/{op}", **attrs))
        return output

    def onnx_zero_point(self, i: int) -> np.ndarray:
        """uint8 with zero point 0 for non-negative activations (a FakeQuantize range starting at 0, so nothing
        large is subtracted before rounding); int8 with the TFLite zero point otherwise."""
        q = self.t[i].quant
        if q.value_range is not None and q.value_range[0] >= 0:
            return np.uint8(0)
        return np.int8(q.zero_point[0])

    def qparams(self, i: int) -> tuple[str, str]:
        t = self.t[i]
        if i not in self.params:
            s = self.init(f"{t.name}/scale", np.float32(t.quant.scale[0]))
            z = self.init(f"{t.name}/zero_point", self.onnx_zero_point(i))
            self.params[i] = (s, z)
        return self.params[i]

    def dq(self, i: int) -> str:
        """The float value of tensor i (DequantizeLinear of an int8 tensor, or the float tensor itself)."""
        t = self.t[i]
        if t.quant is None or t.dtype != np.int8:
            return t.name
        if i not in self.float_of:
            s, z = self.qparams(i)
            self.float_of[i] = self.node("DequantizeLinear", [t.name, s, z], f"{t.name}/dq")
        return self.float_of[i]

    def q(self, value: str, out: int, clip: bool = True) -> None:
        """QuantizeLinear into tensor `out`; a Clip first where its values span less than the stored type (the
        TFLite program lets int8 saturation clamp; a uint8 tensor from 0 does not reach the same top)."""
        t = self.t[out]
        s, z = self.qparams(out)
        vr = t.quant.value_range
        if vr is not None and clip:  # value-preserving ops (pool, pad, concat, reshape) need none
            zp = int(self.onnx_zero_point(out))
            lo_q, hi_q = (0, 255) if self.onnx_zero_point(out).dtype == np.uint8 else (-128, 127)
            if vr[0] + zp > lo_q or vr[1] + zp < hi_q:
                scale = np.float32(t.quant.scale[0])
                lo = self.init(f"{t.name}/clip_lo", np.float32(vr[0] * scale))
                hi = self.init(f"{t.name}/clip_hi", np.float32(vr[1] * scale))
                value = self.node("Clip", [value, lo, hi], f"{t.name}/clip")
        self.node("QuantizeLinear", [value, s, z], t.name)

    def weights(self, w: int, layout: str) -> str:
        """A weight constant as ONNX wants it: OHWI/1HWC -> OIHW, int8 with a per-channel DequantizeLinear."""
        t = self.t[w]
        data = t.data
        if layout == "conv":
            data = np.transpose(data, (0, 3, 1, 2))
        elif layout == "depthwise":
            data = np.transpose(data, (3, 0, 1, 2))  # (1, KH, KW, C) -> (C, 1, KH, KW)
        if t.quant is None:
            return self.init(f"{t.name}/f32", data.astype(np.float32))
        s = self.init(f"{t.name}/scales", np.asarray(t.quant.scale, np.float32))
        if t.name in self.uint8_weights:  # same integers around zero point 128: runtimes take u8*u8 kernels
            q = self.init(f"{t.name}/uint8", (data.astype(np.int16) + 128).astype(np.uint8))
            z = self.init(f"{t.name}/zeros", np.full(len(t.quant.scale), 128, np.uint8))
        else:
            q = self.init(f"{t.name}/int8", data.astype(np.int8))
            z = self.init(f"{t.name}/zeros", np.zeros(len(t.quant.scale), np.int8))
        return self.node("DequantizeLinear", [q, s, z], f"{t.name}/dq", axis=0)

    def bias(self, b: int) -> str:
        t = self.t[b]
        if t.quant is None:
            return self.init(f"{t.name}/f32", t.data.astype(np.float32))
        q = self.init(f"{t.name}/int32", t.data.astype(np.int32))
        s = self.init(f"{t.name}/scales", np.asarray(t.quant.scale, np.float32))
        z = self.init(f"{t.name}/zeros", np.zeros(len(t.quant.scale), np.int32))
        return self.node("DequantizeLinear", [q, s, z], f"{t.name}/dq", axis=0)

    def finish(self, y: str, out: int, options: Any) -> None:
        if options is not None and getattr(options, "fusedActivationFunction", 0) == 1:  # RELU
            y = self.node("Relu", [y], f"{self.t[out].name}/relu")
        if self.t[out].dtype == np.int8:
            self.q(y, out)
        else:
            self.node("Identity", [y], self.t[out].name)

    # ------------------------------------------------------------------ ops
    def _quantize(self, ins: list[int], out: int, _: Any) -> None:
        t = self.t[out]
        s = np.float32(t.quant.scale[0])
        if self.input_scale_fn is not None:
            s = self.input_scale_fn(s, t)
        self.params[out] = (self.init(f"{t.name}/scale", s), self.init(f"{t.name}/zero_point",
                                                                        self.onnx_zero_point(out)))
        x = self.t[ins[0]].name
        if ins[0] in self.preprocessed:
            # OpenVINO folds a Mul/Add in front of a FakeQuantize into its input range, which rounds differently
            # from the float32 ops (measured: 1 input value in 786k off by one level); a Max with the lowest float
            # computes nothing but keeps the ops apart
            lowest = self.init(f"{x}/lowest", np.float32(np.finfo(np.float32).min))
            x = self.node("Max", [x, lowest], f"{x}/unfused")
        self.node("QuantizeLinear", [x, *self.params[out]], t.name)

    def _elementwise(self, op: str, ins: list[int], out: int) -> None:
        """A float op of the input preprocessing; NHWC constants go back to NCHW."""
        names = []
        for i in ins:
            t = self.t[i]
            if t.data is not None:
                data = np.transpose(t.data, (0, 3, 1, 2)) if t.data.ndim == 4 else t.data
                names.append(self.init(t.name, np.ascontiguousarray(data, np.float32)))
            else:
                names.append(t.name)
        self.node(op, names, self.t[out].name)
        self.preprocessed.add(out)

    def _greater_equal(self, ins: list[int], out: int, _: Any) -> None:
        zero = self.init(self.t[ins[1]].name, np.float32(0))
        x = self.t[ins[0]].name
        if ins[0] in self.preprocessed:  # as before a QuantizeLinear: the comparison sees the float32 values
            lowest = self.init(f"{x}/lowest", np.float32(np.finfo(np.float32).min))
            x = self.node("Max", [x, lowest], f"{x}/unfused")
        self.node("GreaterOrEqual", [x, zero], self.t[out].name)

    def _select_v2(self, ins: list[int], out: int, _: Any) -> None:
        """Where(condition, +1, -1) in float at the output's scale, then QuantizeLinear (exact: +-1 levels)."""
        vals = []
        for i in ins[1:]:
            t = self.t[i]
            level = float(t.data.reshape(-1)[0]) - t.quant.zero_point[0]
            vals.append(self.init(t.name, np.float32(level * np.float32(t.quant.scale[0]))))
        self.q(self.node("Where", [self.t[ins[0]].name, *vals], f"{self.t[out].name}/sign"), out, clip=False)

    def _dequantize(self, ins: list[int], out: int, _: Any) -> None:
        self.t[out].flat_from = self.t[ins[0]].flat_from
        self.node("Identity", [self.dq(ins[0])], self.t[out].name)

    def _conv(self, ins: list[int], out: int, options: Any, depthwise: bool) -> None:
        w = self.t[ins[1]]
        kh, kw = (w.shape[1], w.shape[2])
        attrs = {"strides": [options.strideH, options.strideW], "kernel_shape": [kh, kw],
                 "dilations": [options.dilationHFactor, options.dilationWFactor],
                 "auto_pad": "SAME_UPPER" if options.padding == PADDING_SAME else "VALID"}
        if depthwise:
            attrs["group"] = w.shape[3]
        wq = self.weights(ins[1], "depthwise" if depthwise else "conv")
        y = self.node("Conv", [self.dq(ins[0]), wq, self.bias(ins[2])], f"{self.t[out].name}/conv", **attrs)
        self.finish(y, out, options)

    def _conv_2d(self, ins: list[int], out: int, options: Any) -> None:
        self._conv(ins, out, options, depthwise=False)

    def _depthwise_conv_2d(self, ins: list[int], out: int, options: Any) -> None:
        self._conv(ins, out, options, depthwise=True)

    def _fully_connected(self, ins: list[int], out: int, options: Any) -> None:
        x = self.t[ins[0]]
        w = self.t[ins[1]]
        if x.flat_from is not None:  # columns are in NHWC flatten order; ONNX flattened C, H, W
            h, wd, c = x.flat_from
            perm = np.arange(h * wd * c).reshape(h, wd, c).transpose(2, 0, 1).reshape(-1)
            w.data = w.data[:, perm]
        y = self.node("Gemm", [self.dq(ins[0]), self.weights(ins[1], "fc"), self.bias(ins[2])],
                      f"{self.t[out].name}/gemm", transB=1)
        self.finish(y, out, options)

    def _max_pool_2d(self, ins: list[int], out: int, options: Any) -> None:
        y = self.node("MaxPool", [self.dq(ins[0])], f"{self.t[out].name}/pool",
                      kernel_shape=[options.filterHeight, options.filterWidth],
                      strides=[options.strideH, options.strideW],
                      auto_pad="SAME_UPPER" if options.padding == PADDING_SAME else "VALID")
        self.q(y, out, clip=False)

    def _pad(self, ins: list[int], out: int, _: Any) -> None:
        p = self.t[ins[1]].data  # NHWC (4, 2)
        pads = [0, 0, int(p[1, 0]), int(p[2, 0]), 0, 0, int(p[1, 1]), int(p[2, 1])]
        pads_name = self.init(f"{self.t[out].name}/pads", np.asarray(pads, np.int64))
        self.q(self.node("Pad", [self.dq(ins[0]), pads_name], f"{self.t[out].name}/pad", mode="constant"), out,
               clip=False)

    def _gather(self, ins: list[int], out: int, options: Any) -> None:
        idx = self.init(f"{self.t[out].name}/indices", np.asarray(self.t[ins[1]].data, np.int64))
        axis = {3: 1, 1: 2, 2: 3}.get(options.axis, options.axis)  # NHWC -> NCHW
        self.q(self.node("Gather", [self.dq(ins[0]), idx], f"{self.t[out].name}/gather", axis=axis), out,
               clip=False)

    def _resize_nearest_neighbor(self, ins: list[int], out: int, _: Any) -> None:
        x, o = self.t[ins[0]], self.t[out]
        scales = np.array([1, 1, o.shape[1] / x.shape[1], o.shape[2] / x.shape[2]], np.float32)
        s = self.init(f"{o.name}/scales", scales)
        y = self.node("Resize", [self.dq(ins[0]), "", s], f"{o.name}/resize", mode="nearest",
                      coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        self.q(y, out, clip=False)

    def _depth_to_space(self, ins: list[int], out: int, options: Any) -> None:
        y = self.node("DepthToSpace", [self.dq(ins[0])], f"{self.t[out].name}/d2s", blocksize=options.blockSize,
                      mode="DCR")
        self.q(y, out, clip=False)

    def _padv2(self, ins: list[int], out: int, _: Any) -> None:
        p = self.t[ins[1]].data  # NHWC (4, 2)
        fill = self.t[ins[2]]
        level = float(fill.data.reshape(-1)[0]) - fill.quant.zero_point[0]
        pads = [0, 0, int(p[1, 0]), int(p[2, 0]), 0, 0, int(p[1, 1]), int(p[2, 1])]
        pads_name = self.init(f"{self.t[out].name}/pads", np.asarray(pads, np.int64))
        value = self.init(f"{self.t[out].name}/value", np.float32(level * np.float32(fill.quant.scale[0])))
        self.q(self.node("Pad", [self.dq(ins[0]), pads_name, value], f"{self.t[out].name}/pad", mode="constant"),
               out, clip=False)

    def _concatenation(self, ins: list[int], out: int, _: Any) -> None:
        y = self.node("Concat", [self.dq(i) for i in ins], f"{self.t[out].name}/concat", axis=1)
        self.q(y, out, clip=False)

    def _bound(self, ins: list[int], out: int, op: str) -> None:
        x, c = self.t[ins[0]], self.t[ins[1]]
        limit = (float(c.data.reshape(-1)[0]) - c.quant.zero_point[0]) * c.quant.scale[0]  # the TFLite int8 value
        lim = self.init(f"{self.t[out].name}/limit", np.float32(limit))
        self.q(self.node(op, [self.dq(ins[0]), lim], f"{x.name}/{op.lower()}"), out, clip=False)  # is the clamp

    def _minimum(self, ins: list[int], out: int, _: Any) -> None:
        self._bound(ins, out, "Min")

    def _maximum(self, ins: list[int], out: int, _: Any) -> None:
        self._bound(ins, out, "Max")

    def _reshape(self, ins: list[int], out: int, _: Any) -> None:
        x = self.t[ins[0]]
        y = self.node("Flatten", [self.dq(ins[0])], f"{self.t[out].name}/flatten", axis=1)
        if len(x.shape) == 4:
            self.t[out].flat_from = tuple(x.shape[1:])  # type: ignore[assignment]
        self.q(y, out, clip=False)
