"""The RTL project of a dataflow graph: one kernel instance per node, a FIFO on every inner stream, ROM files and a
generated top (rtl/templates/top.sv.j2), plus project.json that simulation and synthesis read back."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from fpga.ir import DataflowGraph, DuplicateStreams, Node
from rtl.kernels import Kernel, StreamFormat, UnsupportedKernel, fifo_ram_style, kernel_for

VERILOG = Path(__file__).parent / "verilog"
TEMPLATES = Path(__file__).parent / "templates"
TOP = "edge_top"
MANIFEST = "project.json"
MIN_FIFO_DEPTH = 2


def fifo_depth(consumer: Node) -> int:
    """Words a stream's FIFO holds: every kernel takes its input at the producer's pace (an MVAU takes the next
    vector into its second buffer while it replays one), so 2 words decouple the ready chains."""
    return MIN_FIFO_DEPTH


@dataclass(frozen=True)
class Project:
    """A written RTL project: where it is, its top's stream formats and words per frame, its kernel instances."""

    directory: Path
    in_format: StreamFormat
    out_format: StreamFormat
    in_words: int  # per frame
    out_words: int
    instances: tuple[dict[str, Any], ...]  # id, node, kind, module, params
    fifos: tuple[dict[str, Any], ...] = ()  # stream, width, depth

    @property
    def sources(self) -> list[Path]:
        return sorted(self.directory.glob("*.sv"))


def _ident(name: str) -> str:
    """A Verilog identifier from an IR name (node and stream names come from the model)."""
    ident = re.sub(r"\W", "_", name)
    return ident if re.match(r"[A-Za-z_]", ident) else f"s_{ident}"


def fifo_instance(stream: str) -> str:
    """The top's instance name of a stream's FIFO."""
    return f"fifo_w_{_ident(stream)}"


def _literal(value: int | str) -> str:
    return f'"{value}"' if isinstance(value, str) else str(int(value))


def kernels(graph: DataflowGraph) -> list[tuple[str, Kernel]]:
    """Every node's kernel, or UnsupportedKernel for the first node the backend cannot build."""
    out = []
    for node in graph.nodes:
        out.append((node.name, kernel_for(node, graph.tensors[node.inputs[0]].dtype)))
    return out


def _outputs(node: Node) -> tuple[str, ...]:
    return node.outputs if isinstance(node, DuplicateStreams) else (node.output,)


def _connections(kernel: Kernel, inputs: list[str], outputs: list[str]) -> tuple[list[tuple[str, str]],
                                                                                  list[tuple[str, str]]]:
    """Port -> wire expressions of one instance, and the assigns that fan a shared output word out."""
    conns: list[tuple[str, str]] = []
    if len(inputs) == 1:
        conns += [("in_valid", f"{inputs[0]}_cv"), ("in_ready", f"{inputs[0]}_cr"), ("in_data", f"{inputs[0]}_cd")]
    else:
        for i, w in enumerate(inputs):
            conns += [(f"in{i}_valid", f"{w}_cv"), (f"in{i}_ready", f"{w}_cr"), (f"in{i}_data", f"{w}_cd")]
    if len(outputs) == 1:
        conns += [("out_valid", f"{outputs[0]}_pv"), ("out_ready", f"{outputs[0]}_pr"),
                  ("out_data", f"{outputs[0]}_pd")]
        return conns, []
    rev = outputs[::-1]  # bit i of out_valid/out_ready is output i
    conns += [("out_valid", "{" + ", ".join(f"{w}_pv" for w in rev) + "}"),
              ("out_ready", "{" + ", ".join(f"{w}_pr" for w in rev) + "}"), ("out_data", f"{outputs[0]}_pd")]
    return conns, [(f"{w}_pd", f"{outputs[0]}_pd") for w in outputs[1:]]


def _format_dict(f: StreamFormat) -> dict[str, Any]:
    return {"elems": f.elems, "bits": f.bits, "signed": f.signed, "bipolar": f.bipolar}


ROM_STYLE_PARAMS = ("WSTYLE", "TSTYLE", "STYLE")


def write_project(graph: DataflowGraph, directory: Path, source: str = "",
                  fifo_depths: dict[str, int] | None = None, place_roms: bool = True) -> Project:
    """Write kernels' sources, ROM files, edge_top.sv and project.json into `directory` (created). With
    `place_roms` the ROMs carry the resource model's rom_style (Xilinx parts); without, synthesis chooses ("auto",
    as the open families' calibration in fpga/resources.py was measured)."""
    built = kernels(graph)
    directory.mkdir(parents=True, exist_ok=True)
    nodes = {n.name: n for n in graph.nodes}
    widths: dict[str, int] = {}
    instances, records = [], []
    assigns: list[tuple[str, str]] = []
    for name, kernel in built:
        node = nodes[name]
        ident = _ident(name)
        params = kernel.write_roms(directory, stem=f"{ident}_", relative=True)
        params = {k: ("auto" if k in ROM_STYLE_PARAMS and not place_roms else v) for k, v in params.items()}
        ins, outs = list(node.inputs), list(_outputs(node))
        ends = [*zip(ins, (f.width for f in kernel.input_formats), strict=True),
                *((o, kernel.out_format.width) for o in outs)]
        for stream, width in ends:
            if widths.setdefault(stream, width) != width:  # insert_width_converters guarantees this
                raise UnsupportedKernel(f"{name}: stream {stream} is {widths[stream]} bits wide at its producer and "
                                        f"{width} at its consumer")
        conns, fan = _connections(kernel, [f"w_{_ident(i)}" for i in ins], [f"w_{_ident(o)}" for o in outs])
        assigns += fan
        instances.append({"id": f"u_{ident}", "node": name, "kind": node.kind, "module": kernel.module,
                          "params": [(k, _literal(v)) for k, v in params.items()], "conns": conns})
        records.append({"id": f"u_{ident}", "node": name, "kind": node.kind, "module": kernel.module, "params": params})
        for source in kernel.sources:
            shutil.copy(VERILOG / source, directory / source)
    shutil.copy(VERILOG / "edge_fifo.sv", directory / "edge_fifo.sv")
    for header in VERILOG.glob("*.svh"):  # included by kernels
        shutil.copy(header, directory / header.name)
    depths = fifo_depths or {}
    consumer = {i: n for n in graph.nodes for i in n.inputs}
    inner = [s for s in widths if s not in (graph.input, graph.output)]
    fifos = [{"id": f"w_{_ident(s)}", "stream": s, "width": widths[s],
              "depth": max(MIN_FIFO_DEPTH, int(depths.get(s, fifo_depth(consumer[s]))))} for s in inner]
    for f in fifos:
        f["style"] = fifo_ram_style(f["width"], f["depth"]) if place_roms else "auto"
    kernel_of = dict(built)
    first = next(n for n in graph.nodes if graph.input in n.inputs)
    last = next(n for n in graph.nodes if graph.output in _outputs(n))
    in_format = kernel_of[first.name].input_formats[first.inputs.index(graph.input)]
    out_format = kernel_of[last.name].out_format
    frame_in = int(np.prod(graph.tensors[graph.input].shape))
    frame_out = int(np.prod(graph.tensors[graph.output].shape))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    text = env.get_template("top.sv.j2").render(
        source=source or graph.name, in_elems=in_format.elems, in_bits=in_format.bits, in_width=in_format.width,
        out_elems=out_format.elems, out_bits=out_format.bits, out_width=out_format.width,
        streams=[{"id": f"w_{_ident(s)}", "name": s, "width": w} for s, w in widths.items()],
        input={"id": f"w_{_ident(graph.input)}"}, output={"id": f"w_{_ident(graph.output)}"}, fifos=fifos,
        instances=instances, assigns=assigns)
    (directory / f"{TOP}.sv").write_text(text)
    manifest = {"top": TOP, "source": source, "in_format": _format_dict(in_format),
                "out_format": _format_dict(out_format), "in_words": frame_in // in_format.elems,
                "out_words": frame_out // out_format.elems, "instances": records,
                "fifos": [{"stream": f["stream"], "width": f["width"], "depth": f["depth"]} for f in fifos]}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return load_project(directory)


def load_project(directory: Path) -> Project:
    """Read a written project back from its project.json."""
    data = json.loads((directory / MANIFEST).read_text())
    return Project(directory, StreamFormat(**data["in_format"]), StreamFormat(**data["out_format"]),
                   int(data["in_words"]), int(data["out_words"]), tuple(data["instances"]),
                   tuple(data["fifos"]))
