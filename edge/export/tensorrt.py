"""TensorRT export: QDQ ONNX in explicit-quantisation form (symmetric int8) plus the trtexec command that builds
the engine on the device. TensorRT does not run here; onnxruntime runs the same Q/DQ model for verification."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

import onnx

from edge.export.qdq import to_tensorrt_qdq
from frontend.qonnx_io import LoadedModel

if TYPE_CHECKING:
    from edge.export.reference import Reference


def build_script(onnx_name: str, input_name: str, shape: tuple[int, ...]) -> str:
    text = resources.files("edge.export").joinpath("templates/build_engine.sh").read_text()
    return Template(text).substitute(onnx=onnx_name, engine="model.engine", input=input_name,
                                     shape="x".join(str(d) for d in shape))


def export_tensorrt(loaded: LoadedModel, tmp: Path, ref: Reference) -> dict[str, Any]:
    from edge.export.reference import ort_run

    proto, widened, reduced, notes = to_tensorrt_qdq(loaded)
    onnx.save(proto, str(tmp / "model.trt.onnx"))
    input_name = proto.graph.input[0].name
    shape = (1, *loaded.input_shape[1:])
    script = tmp / "build_engine.sh"
    script.write_text(build_script("model.trt.onnx", input_name, shape))
    script.chmod(0o755)
    q_types = {i.data_type for i in proto.graph.initializer if i.name.endswith("_zp")}
    check = ref.compare(ort_run(proto, ref.x, optimise=False, batch=ref.batch),
                        "onnxruntime on the Q/DQ model (TensorRT itself is not run here)", exact=not reduced)
    return {"path": "model.trt.onnx", "build_script": script.name, "widened": widened, "reduced": reduced,
            "notes": notes,
            "symmetric_int8": q_types <= {onnx.TensorProto.INT8}, "verification": check.as_dict()}
