"""The deploy package of a build: the shell around the accelerator (Vivado block design and bitfile script for
Zynq boards, v++ link config and package_xo for Alveo) and the PYNQ driver with the settings it reads."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from boards.schema import FpgaBoard
from fpga import host_steps
from fpga.ir import DataflowGraph, StreamingDataWidthConverter
from fpga.width import AXI_BITS, in_elems, out_elems
from hls.codegen import MM_SHELL

HERE = Path(__file__).parent
DRIVER = HERE / "driver.py"
HOST_STEPS = Path(host_steps.__file__)  # copied beside the driver
VIVADO_STUB = HERE / "vivado_stub.tcl"
ACCEL_VLNV = "xilinx.com:hls:edge_top:1.0"  # what run_hls.tcl's export_design -format ip_catalog produces
IP_REPO = "../hls/edge_prj/sol1/impl/ip"  # relative to deploy/
DMA_LENGTH_WIDTH = 26  # AXI DMA buffer-length register bits: one transfer moves < 64 MiB
# Vitis HLS s_axilite map of edge_top: control (ap_start/ap_done/ap_idle), GIE, IER, ISR, then the first argument
REGISTERS = {"ctrl": 0x00, "frames": 0x10}
# Alveo m_axi kernel: control, then in_mem (64-bit pointer), out_mem, frames
MM_REGISTERS = {"ctrl": 0x00, "in_mem": 0x10, "out_mem": 0x1C, "frames": 0x28}

# Vivado board files (a preset for DDR and MIO; without them the PS keeps its defaults)
BOARD_PARTS = {
    "pynq-z1": "www.digilentinc.com:pynq-z1:part0:1.0",
    "pynq-z2": "tul.com.tw:pynq-z2:part0:1.0",
    "ultra96-v2": "avnet.com:ultra96v2:part0:1.2",
    "zcu102": "xilinx.com:zcu102:part0:3.4",
    "zcu104": "xilinx.com:zcu104:part0:1.1",
    "kv260": "xilinx.com:kv260_som:part0:1.4",
}

# DDR the HP port reaches (the board's memory below 4 GiB)
DDR_RANGE = {"pynq-z1": "512M", "pynq-z2": "512M", "ultra96-v2": "2G", "zcu102": "2G", "zcu104": "2G", "kv260": "2G"}


@dataclass(frozen=True)
class ZynqShell:
    """The processing system of a Zynq family: its IP, ports, clock and the address windows the driver uses."""

    name: str
    vlnv: str
    rule: str
    automation: str
    master: str
    slave: str
    clock: str
    reset: str
    clock_sinks: tuple[str, ...]
    ddr_segment: str
    accel_base: int
    dma_base: int
    config: tuple[tuple[str, str], ...]  # CONFIG properties; "{clock}" / "{bits}" filled per build

    def context(self, clock_mhz: float, bits: int, ddr_range: str) -> dict[str, Any]:
        fill = {"clock": f"{clock_mhz:g}", "bits": str(bits)}
        return {"name": self.name, "vlnv": self.vlnv, "rule": self.rule, "automation": self.automation,
                "master": self.master, "slave": self.slave, "clock": self.clock, "reset": self.reset,
                "clock_sinks": list(self.clock_sinks), "ddr_segment": self.ddr_segment, "ddr_range": ddr_range,
                "config": {k: v.format(**fill) for k, v in self.config}}


SHELLS = {
    "zynq-ps7": ZynqShell(
        name="processing_system7_0", vlnv="xilinx.com:ip:processing_system7:5.5",
        rule="xilinx.com:bd_rule:processing_system7",
        automation='{make_external "FIXED_IO, DDR" apply_board_preset "1" Master "Disable" Slave "Disable"}',
        master="M_AXI_GP0", slave="S_AXI_HP0", clock="FCLK_CLK0", reset="FCLK_RESET0_N",
        clock_sinks=("M_AXI_GP0_ACLK", "S_AXI_HP0_ACLK"), ddr_segment="S_AXI_HP0/HP0_DDR_LOWOCM",
        accel_base=0x43C0_0000, dma_base=0x4040_0000,
        config=(("PCW_USE_M_AXI_GP0", "1"), ("PCW_USE_S_AXI_HP0", "1"), ("PCW_S_AXI_HP0_DATA_WIDTH", "{bits}"),
                ("PCW_EN_CLK0_PORT", "1"), ("PCW_EN_RST0_PORT", "1"), ("PCW_FPGA0_PERIPHERAL_FREQMHZ", "{clock}"))),
    "zynq-ps8": ZynqShell(
        name="zynq_ultra_ps_e_0", vlnv="xilinx.com:ip:zynq_ultra_ps_e:3.5",
        rule="xilinx.com:bd_rule:zynq_ultra_ps_e", automation='{apply_board_preset "1"}',
        master="M_AXI_HPM0_FPD", slave="S_AXI_HP0_FPD", clock="pl_clk0", reset="pl_resetn0",
        clock_sinks=("maxihpm0_fpd_aclk", "saxihp0_fpd_aclk"), ddr_segment="SAXIGP2/HP0_DDR_LOW",
        accel_base=0xA000_0000, dma_base=0xA001_0000,
        config=(("PSU__USE__M_AXI_GP0", "1"), ("PSU__USE__M_AXI_GP1", "0"), ("PSU__USE__M_AXI_GP2", "0"),
                ("PSU__MAXIGP0__DATA_WIDTH", "32"), ("PSU__USE__S_AXI_GP2", "1"),
                ("PSU__SAXIGP2__DATA_WIDTH", "{bits}"), ("PSU__FPGA_PL0_ENABLE", "1"),
                ("PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ", "{clock}"))),
}


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")), trim_blocks=True,
                              lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)


def _io(graph: DataflowGraph, tensor: str, node: StreamingDataWidthConverter, first: bool) -> dict[str, Any]:
    t = graph.tensors[tensor]
    per = in_elems(node) if first else out_elems(node)
    elems = int(np.prod(t.shape))
    kind = "bipolar" if t.dtype.bipolar else ("signed" if t.dtype.signed else "unsigned")
    return {"shape": [int(d) for d in t.shape], "elems": elems, "bits": t.dtype.bits, "kind": kind,
            "elems_per_word": per, "words_per_frame": elems // per}


def settings_for(graph: DataflowGraph, board: FpgaBoard, fps: float | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """settings.json (JSON-able) and host_steps.npz (arrays) for the driver."""
    pre, post = graph.pre, graph.post
    arrays: dict[str, np.ndarray] = {"post_scale": np.asarray(post.scale, np.float64),
                                     "post_bias": np.asarray(post.bias, np.float64)}
    ops = []
    for i, op in enumerate(pre.host_ops):
        if op.op == "Reshape":
            ops.append({"op": "Reshape", "shape": [int(d) for d in op.const]})
        else:
            arrays[f"pre_op{i}"] = np.asarray(op.const, np.float32)
            ops.append({"op": op.op, "const": f"pre_op{i}", "const_first": bool(op.const_first)})
    if post.layout.perm is not None:
        arrays["post_perm"] = np.asarray(post.layout.perm, np.int64)
    first, last = graph.nodes[0], graph.nodes[-1]
    assert isinstance(first, StreamingDataWidthConverter) and isinstance(last, StreamingDataWidthConverter)
    mm = board.shell == MM_SHELL
    shell = SHELLS.get(board.shell)
    settings: dict[str, Any] = {
        "schema": "edge-deploy/1", "model": graph.name, "board": board.name, "part": board.part,
        "shell": board.shell, "clock_mhz": board.clock_mhz, "axi_bits": AXI_BITS,
        "estimated_fps": fps,
        "accelerator": {"name": "edge_top_0", "vlnv": ACCEL_VLNV,
                        "base": None if shell is None else shell.accel_base, "range": 0x10000,
                        "registers": MM_REGISTERS if mm else REGISTERS},
        "dma": None if mm else {"name": "axi_dma_0", "base": shell.dma_base if shell else None, "range": 0x10000,
                                "length_width": DMA_LENGTH_WIDTH, "data_bits": AXI_BITS},
        "input": _io(graph, graph.input, first, True),
        "output": _io(graph, graph.output, last, False),
        "pre": {"scale": float(pre.scale), "bits": pre.bits, "signed": bool(pre.signed), "narrow": bool(pre.narrow),
                "rounding_mode": pre.rounding_mode, "onnx_shape": [int(d) for d in pre.onnx_shape],
                "raw_shape": [int(d) for d in pre.raw_shape], "bipolar": bool(pre.bipolar),
                "map_1d": bool(pre.map_1d), "host_ops": ops},
        "post": {"top_k": post.top_k, "onnx_shape": [int(d) for d in post.onnx_shape], "layout": post.layout.kind,
                 "ir_shape": [int(d) for d in graph.tensors[graph.output].shape]},
    }
    return settings, arrays


def write_deploy(graph: DataflowGraph, board: FpgaBoard, out: Path, fps: float | None = None) -> list[str]:
    """Write deploy/ for `graph` on `board` into `out`; returns the files written (relative to out)."""
    out.mkdir(parents=True, exist_ok=True)
    settings, arrays = settings_for(graph, board, fps)
    env = _env()
    ctx: dict[str, Any] = {"model": graph.name, "board": board.name, "part": board.part,
                           "clock_mhz": f"{board.clock_mhz:g}", "axi_bits": AXI_BITS, "ip_repo": IP_REPO,
                           "accel_vlnv": ACCEL_VLNV, "dma_length_width": DMA_LENGTH_WIDTH,
                           "input_words": settings["input"]["words_per_frame"],
                           "output_words": settings["output"]["words_per_frame"]}
    written: list[str] = []

    def render(template: str, name: str) -> None:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(env.get_template(template).render(**ctx), encoding="utf-8")
        written.append(name)

    if board.shell in SHELLS:
        shell = SHELLS[board.shell]
        ctx.update(ps=shell.context(board.clock_mhz, AXI_BITS, DDR_RANGE.get(board.name, "512M")),
                   board_part=BOARD_PARTS.get(board.name, ""),
                   addresses={"accel": f"0x{shell.accel_base:08X}", "dma": f"0x{shell.dma_base:08X}"})
        render("block_design.tcl.j2", "block_design.tcl")
        render("build_bitfile.tcl.j2", "build_bitfile.tcl")
    elif board.shell == MM_SHELL:
        render("package_xo.tcl.j2", "package_xo.tcl")
        render("link.cfg.j2", "link.cfg")
    driver = out / "driver"
    driver.mkdir(exist_ok=True)
    shutil.copyfile(DRIVER, driver / "driver.py")
    shutil.copyfile(HOST_STEPS, driver / "host_steps.py")
    (driver / "settings.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    np.savez(driver / "host_steps.npz", **arrays)
    written += ["driver/driver.py", "driver/host_steps.py", "driver/settings.json", "driver/host_steps.npz"]
    ctx.update(files=written, shell=board.shell, pynq=board.pynq)
    render("README.md.j2", "README.md")
    return written
