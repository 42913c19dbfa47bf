"""Run a written .tflite file on its own in LiteRT (an independent check of what an export wrote)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def run_tflite_file(path: Path, x: np.ndarray) -> np.ndarray:
    """The file's float output for NCHW (or flat) float inputs x, fed NHWC at batch len(x)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    inp = it.get_input_details()[0]
    feed = np.moveaxis(x, 1, -1) if x.ndim == 4 else x
    it.resize_tensor_input(inp["index"], list(feed.shape))
    it.allocate_tensors()
    it.set_tensor(inp["index"], feed)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])
