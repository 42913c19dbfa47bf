"""Save and load a DataflowGraph as `ir.json` (structure, readable) plus `ir.npz` (weights and thresholds)."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from fpga.datatypes import IntType
from fpga.ir import (
    DataflowGraph,
    HostOp,
    InputQuant,
    Layout,
    Node,
    OutputAffine,
    Probe,
    TensorInfo,
    Thresholds,
)
from fpga.kinds import node_types
from frontend.errors import EdgeError

FORMAT = "edge-dataflow-ir/1"
IR_JSON, IR_NPZ = "ir.json", "ir.npz"


class _Writer:
    """Turns IR objects into JSON-able data, moving arrays into a dict saved as .npz."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def array(self, key: str, a: np.ndarray) -> dict[str, str]:
        self.arrays[key] = np.asarray(a)
        return {"npz": key}

    def value(self, key: str, v: Any) -> Any:
        if isinstance(v, np.ndarray):
            return self.array(key, v)
        if isinstance(v, IntType):
            return v.name
        if isinstance(v, Thresholds):
            return {"values": self.array(f"{key}.values", v.values),
                    "descending": self.array(f"{key}.descending", v.descending),
                    "base": v.base, "step": v.step, "out_dtype": v.out_dtype.name}
        if isinstance(v, Layout):
            return {"kind": v.kind, "perm": None if v.perm is None else self.array(f"{key}.perm", v.perm)}
        if isinstance(v, HostOp):
            return self.obj(key, v)
        if isinstance(v, tuple | list):
            return [self.value(f"{key}.{i}", x) for i, x in enumerate(v)]
        if isinstance(v, np.integer | np.floating):
            return v.item()
        return v

    def obj(self, key: str, o: Any) -> dict[str, Any]:
        return {f.name: self.value(f"{key}.{f.name}", getattr(o, f.name)) for f in fields(o)}


def graph_to_data(graph: DataflowGraph) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    w = _Writer()
    data = {
        "format": FORMAT,
        "name": graph.name,
        "input": graph.input,
        "output": graph.output,
        "pre": w.obj("pre", graph.pre),
        "post": w.obj("post", graph.post),
        "tensors": {k: {"shape": list(t.shape), "dtype": t.dtype.name} for k, t in graph.tensors.items()},
        "nodes": [{"kind": n.kind, **w.obj(n.name, n)} for n in graph.nodes],
        "probes": {k: w.obj(f"probe.{k}", p) for k, p in graph.probes.items()},
    }
    return data, w.arrays


def save_graph(graph: DataflowGraph, directory: Path) -> None:
    data, arrays = graph_to_data(graph)
    (directory / IR_JSON).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    np.savez_compressed(directory / IR_NPZ, **arrays)


def _node(d: dict[str, Any], arrays: dict[str, np.ndarray]) -> Node:
    cls = node_types()[d["kind"]]
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in d:  # a field added since this IR was saved: its default
            continue
        v = d[f.name]
        if isinstance(v, dict) and set(v) == {"npz"}:
            v = arrays[v["npz"]]
        elif f.name == "thresholds" and v is not None:
            v = Thresholds(values=arrays[v["values"]["npz"]], descending=arrays[v["descending"]["npz"]],
                           base=int(v["base"]), step=int(v["step"]), out_dtype=IntType.parse(v["out_dtype"]))
        elif "dtype" in f.name and isinstance(v, str):
            v = IntType.parse(v)
        elif f.name == "in_dtypes":
            v = tuple(IntType.parse(x) for x in v)
        elif isinstance(v, list):
            v = tuple(v)
        kwargs[f.name] = v
    return cls(**kwargs)


def _layout(d: dict[str, Any], arrays: dict[str, np.ndarray]) -> Layout:
    return Layout(d["kind"], None if d["perm"] is None else arrays[d["perm"]["npz"]])


def load_graph(directory: Path) -> DataflowGraph:
    """Load an IR written by `save_graph`; a missing or foreign file is a one-line error."""
    try:
        data = json.loads((directory / IR_JSON).read_text(encoding="utf-8"))
        with np.load(directory / IR_NPZ, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError as exc:
        raise EdgeError(f"{directory}: no dataflow IR here ({Path(exc.filename).name} missing); run `edge build`") \
            from None
    except (OSError, ValueError) as exc:
        raise EdgeError(f"{directory}: unreadable dataflow IR ({exc})") from None
    if data.get("format") != FORMAT:
        raise EdgeError(f"{directory / IR_JSON}: format {data.get('format')!r}, expected {FORMAT!r}")
    pre = data["pre"]
    post = data["post"]
    return DataflowGraph(
        name=data["name"],
        nodes=tuple(_node(n, arrays) for n in data["nodes"]),
        tensors={k: TensorInfo(tuple(t["shape"]), IntType.parse(t["dtype"])) for k, t in data["tensors"].items()},
        input=data["input"],
        output=data["output"],
        pre=InputQuant(scale=pre["scale"], bits=pre["bits"], signed=pre["signed"], narrow=pre["narrow"],
                       rounding_mode=pre["rounding_mode"], onnx_shape=tuple(pre["onnx_shape"]),
                       host_ops=tuple(HostOp(h["op"], arrays[h["const"]["npz"]], h["const_first"])
                                      for h in pre.get("host_ops", [])),
                       raw_shape=tuple(pre.get("raw_shape", [])), bipolar=bool(pre.get("bipolar", False)),
                       map_1d=bool(pre.get("map_1d", False))),
        post=OutputAffine(scale=arrays[post["scale"]["npz"]], bias=arrays[post["bias"]["npz"]],
                          onnx_shape=tuple(post["onnx_shape"]), layout=_layout(post["layout"], arrays),
                          top_k=post["top_k"]),
        probes={k: Probe(p["onnx_tensor"], arrays[p["scale"]["npz"]], _layout(p["layout"], arrays))
                for k, p in data["probes"].items()},
    )
