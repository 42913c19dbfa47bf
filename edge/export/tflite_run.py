"""Run an exported TFLite model with LiteRT on a batch in the QONNX layout (used by verification)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from edge.export.tflite import TfliteExport
from fpga.execute import quantize_input, to_ir_layout
from fpga.ir import InputQuant


class TfliteRunner:
    """A LiteRT interpreter over one exported model; the batch size follows the input."""

    def __init__(self, model: TfliteExport, threads: int = 1, keep_tensors: bool = False) -> None:
        import ai_edge_litert
        from ai_edge_litert.interpreter import Interpreter

        self.model = model
        self.version = getattr(ai_edge_litert, "__version__", "?")
        with warnings.catch_warnings():  # keeping every tensor is what the per-layer check is for
            warnings.simplefilter("ignore", UserWarning)
            self.interp = Interpreter(model_content=model.flatbuffer, num_threads=threads,
                                      experimental_preserve_all_tensors=keep_tensors)
        self.names = {t["name"]: t["index"] for t in self.interp.get_tensor_details()}

    def run_float(self, x: np.ndarray, pre: InputQuant) -> np.ndarray:
        """x: float batch in the QONNX layout -> float outputs (int8 I/O is quantised/dequantised here)."""
        if pre.host_ops and pre.host_ops[0].op == "Gather":  # token ids, whatever the I/O mode
            feed = np.ascontiguousarray(np.asarray(x).reshape(len(x), *pre.raw_shape), np.int32)
        elif self.model.io == "int8":
            q = quantize_input(pre, x) + self.model.input_quant[1]
            feed = q.astype(np.int8)
        else:
            # the model takes its input at the quantiser's shape, in the accelerator's order (NHWC / flat)
            x = np.asarray(x, np.float32).reshape(len(x), *pre.onnx_shape)
            feed = np.ascontiguousarray(to_ir_layout(pre, x), np.float32)
        inp = self.interp.get_input_details()[0]
        self.interp.resize_tensor_input(inp["index"], list(feed.shape))
        self.interp.allocate_tensors()
        self.interp.set_tensor(inp["index"], feed)
        self.interp.invoke()
        y = self.interp.get_tensor(self.interp.get_output_details()[0]["index"])
        if self.model.output_quant is not None:
            scale, zp = self.model.output_quant
            y = (y.astype(np.float64) - zp) * scale
        if y.ndim == 4:  # an image output leaves NHWC; the golden model's is NCHW
            y = np.moveaxis(y, -1, 1)
        return np.asarray(y, np.float32)

    def tensor(self, name: str) -> np.ndarray:
        return self.interp.get_tensor(self.names[name])

    def _info(self, d: dict[str, Any]) -> dict[str, Any]:
        scale, zp = d["quantization"]
        info = {"name": d["name"], "shape": [-1, *map(int, d["shape"][1:])], "dtype": np.dtype(d["dtype"]).name}
        if scale:
            info.update(scale=float(scale), zero_point=int(zp))
        return info

    def input_info(self) -> dict[str, Any]:
        return {**self._info(self.interp.get_input_details()[0]), "layout": self.model.input_layout}

    def output_info(self) -> dict[str, Any]:
        return self._info(self.interp.get_output_details()[0])
