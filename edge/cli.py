"""The `edge` command line: train, inspect, boards (and the FPGA and edge paths as they land)."""

from __future__ import annotations

import json
import os
import signal
import sys
import warnings
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import click

from edge import __version__
from edge.table import render
from frontend.errors import EdgeError
from frontend.qonnx_io import SUPPORTED_OPS

BUNDLED_MODEL = "tfc_w2a2_digits.onnx"

HELP = """\b
edge: quantized neural networks from Brevitas QAT to FPGAs and edge devices.

\b
Workflow:
  edge train   --model tfc --wbits 2 --abits 2 -o out/   train on real data, export QONNX
  edge quantize net.py:build --calib x.npy -o q/         post-training quantisation of a float model
  edge inspect out/model.onnx                            layers, bits, MACs, what each target accepts
  edge build   --board pynq-z2 out/model.onnx -o build/  dataflow IR, folding, estimates, HLS, simulation
  edge simulate build/                                   C-sim + cycle-level simulation vs the golden model
  edge export  --target tflite out/model.onnx            int8 TFLite / QDQ ONNX / OpenVINO / TensorRT, verified
  edge bench   export/                                 latency on this machine (LiteRT/OpenVINO/ORT)
  edge boards  list | show NAME                          FPGA boards and edge devices we target

Every command that prints results takes --json for scripts. Errors are one line on stderr, exit code 2.
"""


def bundled_model_path() -> Path:
    """The small pre-trained QONNX model shipped in the package (TFC w2a2 on digits)."""
    return Path(str(resources.files("edge") / "models" / BUNDLED_MODEL))


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


@click.group(help=HELP, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, "--version", prog_name="edge")
def cli() -> None:
    pass


# ---------------------------------------------------------------------------------------------- boards
@cli.group(help="FPGA boards and edge devices: one validated YAML profile each.")
def boards() -> None:
    pass


@boards.command("list", help="Table of every bundled profile: name, kind, part or SoC, key resources.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def boards_list(as_json: bool) -> None:
    from boards import list_boards
    from boards.schema import FpgaBoard

    items = list_boards()
    if as_json:
        emit_json([b.as_dict() for b in items])
        return
    rows = [[b.name, b.kind, b.part if isinstance(b, FpgaBoard) else b.soc, b.summary()] for b in items]
    click.echo(render(["name", "kind", "part / SoC", "resources"], rows))


@boards.command("show", help="Every field of one profile. NAME is a bundled name or a path to a .yaml file.")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def boards_show(name: str, as_json: bool) -> None:
    from boards import load_board

    board = load_board(name)
    data = board.as_dict()
    if as_json:
        emit_json(data)
        return
    for key, value in data.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list):
            value = "; ".join(", ".join(f"{k}={v}" for k, v in item.items()) for item in value) or "none"
        click.echo(f"{key:>20}: {value}")


# ---------------------------------------------------------------------------------------------- train
@cli.command(help="Quantisation-aware training of a zoo model; writes model.onnx (QONNX), model.pt, metrics.json.")
@click.option("--model", "model_name", default="tfc", show_default=True,
              help="Zoo model: tfc, sfc, lfc (MLPs), cnv, dws (depthwise-separable), resnet, vit (transformer).")
@click.option("--wbits", type=int, default=2, show_default=True, help="Weight bit width, 1 (binary) to 8.")
@click.option("--abits", type=int, default=2, show_default=True, help="Activation bit width, 1 (bipolar) to 8.")
@click.option("--dataset", default="digits", show_default=True,
              help="'digits' (UCI 8x8 digits, bundled) or an .npz file with arrays x, y and optionally split.")
@click.option("--epochs", type=int, default=40, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=None,
              help="Adam learning rate (cosine decay); default 0.01, 0.003 for vit.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--float-baseline/--no-float-baseline", default=True, show_default=True,
              help="Also train the same architecture in float to report the accuracy cost of quantisation.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("out"), show_default=True,
              help="Output directory (replaced atomically).")
@click.option("--json", "as_json", is_flag=True, help="Print metrics.json to stdout.")
def train(model_name: str, wbits: int, abits: int, dataset: str, epochs: int, batch_size: int, lr: float | None,
          seed: int, float_baseline: bool, output: Path, as_json: bool) -> None:
    from edge.data import load_dataset
    from edge.train import TrainConfig
    from edge.train import train as run_train
    from edge.zoo import ZOO, check_model_bits

    if model_name not in ZOO and ":" not in model_name:
        raise EdgeError(f"unknown model '{model_name}'; the zoo has {', '.join(ZOO)}, or pass FILE.py:FACTORY")
    check_model_bits(model_name, wbits, abits)
    if lr is None:
        lr = ZOO[model_name].lr if model_name in ZOO else 0.01
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise EdgeError("--epochs and --batch-size must be >= 1 and --lr > 0")
    cfg = TrainConfig(model_name, wbits, abits, dataset, epochs, batch_size, lr, seed, float_baseline)
    metrics = run_train(cfg, load_dataset(dataset, seed=0), output, progress=sys.stderr.isatty())
    if as_json:
        emit_json(metrics)
        return
    fa = metrics["float_test_accuracy"]
    click.echo(f"wrote {output}/model.onnx, model.pt, metrics.json")
    click.echo(
        f"{model_name} w{wbits}a{abits} on {dataset}: quantised test accuracy {metrics['quant_test_accuracy']:.2%}"
        + (f" (float baseline {fa:.2%})" if fa is not None else "")
        + f", QONNX golden {metrics['qonnx_test_accuracy']:.2%}, {metrics['parameters']:,} parameters, "
        f"{metrics['train_seconds']:.1f} s"
    )


# ---------------------------------------------------------------------------------------------- quantize
@cli.command(help="""Post-training quantisation of a float model (Brevitas graph PTQ) to QONNX that edge build, export,
compress and inspect take as it is.

\b
MODEL is FILE.py:FACTORY (FACTORY() returns a float torch.nn.Module: your own network, a torchvision model, a
Hugging Face model, whose .logits is taken) or a float .onnx (converted with onnx2torch). BatchNorm is merged,
weights are quantised per channel, activations per tensor, the first and last layers keep 8-bit weights and the
input quantiser is 8-bit. --method is a calibration (minmax, percentile, mse) followed by steps joined with +:
equalize (cross-layer weight and activation equalisation), gptq (GPTQ rounding), bias (bias correction).
--wbits 4-8 picks each layer's weight width from a sensitivity pass (the narrowest width that costs at most
--mp-tolerance dB of output SQNR). --board sets defaults for that target: signed int8 for edge devices, w4-8/a8
with unsigned ReLU outputs and mse+bias for an FPGA.
\b
Writes DIR/model.onnx (QONNX), DIR/quantized.pt (the quantised state dict) and DIR/quantize.json.""")
@click.argument("model")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("quantized"), show_default=True,
              help="Output directory (written whole or not at all).")
@click.option("--calib", type=click.Path(path_type=Path), required=True,
              help="Real inputs (.npy, batch first): float images or int64 token ids.")
@click.option("--labels", type=click.Path(path_type=Path), default=None,
              help="Labels of --calib (.npy): reports float and quantised accuracy.")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None, help="State dict of the float model.")
@click.option("--wbits", default=None, help="Weight bits, 2-8, or a range such as 4-8 for mixed precision "
              "[default: 8, or the board's].")
@click.option("--abits", type=int, default=None, help="Activation bits, 2-8 [default: 8, or the board's].")
@click.option("--method", default=None, help="Calibration and steps, e.g. mse+equalize+gptq+bias "
              "[default: percentile+bias, or the board's].")
@click.option("--board", default=None, help="Target board or device: its defaults for bits and method.")
@click.option("--mp-tolerance", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Mixed precision: output SQNR (dB) a layer may lose at a narrower width.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print quantize.json.")
def quantize(model: str, output: Path, calib: Path, labels: Path | None, checkpoint: Path | None, wbits: str | None,
             abits: int | None, method: str | None, board: str | None, mp_tolerance: float, batch_size: int,
             as_json: bool) -> None:
    from edge.ptq import make_recipe
    from edge.ptq import quantize as run_quantize
    from edge.ptq.source import load_array

    target = None
    if board is not None:
        from boards import load_board

        target = load_board(board)
    recipe = make_recipe(target, wbits, abits, method)
    x = load_array(calib, "calibration")
    y = None
    if labels is not None:
        y = load_array(labels, "labels")
        if y.dtype.kind not in "iu" or y.ndim != 1:
            raise EdgeError(f"{labels}: labels must be a 1-D integer array (got dtype {y.dtype}, shape {y.shape})")
    log = (lambda msg: None) if as_json else (lambda msg: click.echo(msg, err=True))
    report = run_quantize(model, x, output, recipe, labels=y, checkpoint=checkpoint, batch=batch_size,
                          progress=not as_json and sys.stderr.isatty(), mp_tolerance_db=mp_tolerance, log=log)
    if as_json:
        emit_json(report)
        return
    rows = [[r["name"], r["kind"], str(r["wbits"]), "inf" if r["sqnr_db"] is None else f"{r['sqnr_db']:.1f}"]
            for r in report["layers"]]
    click.echo(render(["layer", "kind", "w bits", "output SQNR dB"], rows))
    acc = ""
    if report["float_accuracy"] is not None:
        acc = f"accuracy float {report['float_accuracy']:.2%} -> quantised {report['quant_accuracy']:.2%}; "
    click.echo(f"{model}: w{report['wbits']}a{report['abits']} {report['method']} ({report['mode']} mode, "
               f"{report['calibration_samples']} calibration samples): {acc}top-1 agreement with float "
               f"{report['agreement']:.2%}, output SQNR {report['output_sqnr_db']} dB")
    g = report["qonnx_vs_torch"]
    click.echo(f"QONNX (golden) vs quantised PyTorch on {g['samples']} samples: top-1 agreement "
               f"{g['top1_agreement']:.2%}, max |delta| {g['max_abs_diff']:.2g}"
               + (f" ({g['rounding_ties']} on a rounding tie, where float32 and float64 PyTorch disagree)"
                  if g["rounding_ties"] else "")
               + ("" if report["qonnx_accuracy"] is None else f", QONNX accuracy {report['qonnx_accuracy']:.2%}"))
    hint = f" (try: edge inspect {output}/model.onnx)" if report["input"]["dtype"] == "float32" else ""
    click.echo(f"wrote {output}/model.onnx, quantized.pt, quantize.json{hint}")


# ---------------------------------------------------------------------------------------------- inspect
@cli.command(help="""Layers, shapes, bit widths, MACs and weight bits of a QONNX model, and what each target accepts.

\b
MODEL defaults to the bundled TFC w2a2 digits model. Ops edge reads:
  """ + ", ".join(sorted(SUPPORTED_OPS)))
@click.argument("model", required=False, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def inspect(model: Path | None, as_json: bool) -> None:
    from edge.inspect_model import summarize
    from frontend.qonnx_io import load_model

    summary = summarize(load_model(model or bundled_model_path()))
    if as_json:
        emit_json(summary.as_dict())
        return
    click.echo(f"{summary.path}: input {summary.input_shape} -> output {summary.output_shape}, {summary.nodes} nodes")
    for rewrite in summary.normalisation:
        click.echo(f"normalised: {rewrite}")
    rows = [[layer.name, layer.op, "x".join(map(str, layer.weight_shape)), layer.input_quant, layer.weight_quant,
             "x".join(map(str, layer.output_shape)), layer.macs, layer.weight_bits] for layer in summary.layers]
    rows.append(["total", "", "", "", "", "", summary.total_macs, summary.total_weight_bits])
    click.echo(render(["layer", "op", "weights", "in", "w", "output", "MACs", "weight bits"], rows))
    click.echo()
    for verdict in summary.targets:
        status = "supported" if verdict.supported else "rejected"
        click.echo(f"{verdict.target:>9}: {status}")
        for reason in verdict.reasons:
            click.echo(f"{'':>11}- {reason}")
        if verdict.notes:
            ops = Counter(note.split(": ", 1)[1].split(" ", 1)[0] for note in verdict.notes)
            listed = ", ".join(f"{op} x{n}" if n > 1 else op for op, n in sorted(ops.items()))
            where = "in float32 on LiteRT" if verdict.target == "tflite" else "in float between QDQ pairs"
            click.echo(f"{'':>11}- {where}: {listed}")


# ---------------------------------------------------------------------------------------------- build
@cli.command(help="""Compile a QONNX model for an FPGA board: lower it to an integer dataflow IR (checked bit-exact
against the QONNX golden model), fold every layer (PE/SIMD) for the highest throughput that fits the board, and
estimate cycles and resources.

\b
Writes OUTPUT/ir.json + ir.npz (the IR), folding.json (edit it and pass it back with --folding) and report.json.
MODEL defaults to the bundled TFC w2a2 digits model.""")
@click.argument("model", required=False, type=click.Path(path_type=Path))
@click.option("--board", default="pynq-z2", show_default=True, help="FPGA board name or a path to a board .yaml.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("build"), show_default=True,
              help="Output directory (replaced atomically).")
@click.option("--util-cap", type=click.FloatRange(0.01, 1.0), default=0.8, show_default=True,
              help="Fraction of each board resource the accelerator may use.")
@click.option("--target-fps", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Meet this frame rate with the fewest resources instead of maximising throughput.")
@click.option("--folding", "folding_file", type=click.Path(path_type=Path), default=None,
              help="Apply this folding.json instead of optimising.")
@click.option("--clock-mhz", type=click.FloatRange(min=1), default=None, help="Override the board's default clock.")
@click.option("--top-k", type=click.IntRange(min=0), default=0,
              help="End the accelerator in LabelSelect returning the top-k class indices (needs one output scale).")
@click.option("--verify-samples", type=click.IntRange(min=0), default=64, show_default=True,
              help="Random inputs on which the IR is checked against the QONNX golden model (0 to skip).")
@click.option("--sim/--no-sim", "simulate", default=True, show_default=True,
              help="C-sim the generated HLS (g++, bit-exact) and simulate it cycle by cycle, sizing the FIFOs.")
@click.option("--sim-frames", type=click.IntRange(min=2), default=16, show_default=True,
              help="Frames for the bit-exact simulations. The HLS cycle simulation measures the steady state on a "
                   "timing-only run of these frames repeated until the interval between frames settles (8 to 64 "
                   "frames); Verilator (--backend rtl) over the second half of these frames.")
@click.option("--backend", type=click.Choice(["hls", "rtl"]), default=None,
              help="hls: HLS C++ (C-sim, cycle-level sim, Xilinx shell and PYNQ driver). rtl: hand-written "
                   "SystemVerilog kernels and a generated top in OUTPUT/rtl/, simulated by Verilator (bit-exact, "
                   "with random back-pressure).  [default: hls for Xilinx boards, rtl for ECP5, iCE40 and Gowin]")
@click.option("--synth", is_flag=True,
              help="hls: also run Vitis HLS (csim, csynth, cosim, export) if vitis_hls is on PATH. rtl: Yosys "
                   "synth_xilinx (synth_ecp5/ice40/gowin on open boards) on the top, per-layer LUT/FF/BRAM/DSP "
                   "beside the estimates.")
@click.option("--bitfile", is_flag=True,
              help="Also build deploy/bitfile/edge.bit + .hwh (Vitis HLS, then Vivado on the block design); needs "
                   "both on PATH. Alveo: the kernel .xo. ECP5/iCE40/Gowin boards: the top behind a UART shell "
                   "through Yosys, nextpnr (timing-driven at the board clock) and ecppack/icepack/gowin_pack, no "
                   "vendor tools; key `bitstream` in --json.")
@click.option("--json", "as_json", is_flag=True, help="Print report.json instead of the table.")
def build(model: Path | None, board: str, output: Path, util_cap: float, target_fps: float | None,
          folding_file: Path | None, clock_mhz: float | None, top_k: int, verify_samples: int, simulate: bool,
          sim_frames: int, backend: str, synth: bool, bitfile: bool, as_json: bool) -> None:
    import dataclasses

    from boards import load_board
    from boards.schema import FpgaBoard
    from edge.build import build_bitfile, build_model, build_rtl_model, check_bitfile_tools
    from edge.fsutil import write_json
    from fpga.build import BuildOptions
    from frontend.qonnx_io import load_model

    target = load_board(board)
    if not isinstance(target, FpgaBoard):
        raise EdgeError(f"board '{target.name}' is an edge device, not an FPGA; "
                        f"use `edge export --board {target.name}`")
    if clock_mhz is not None:
        target = dataclasses.replace(target, clock_mhz=clock_mhz)
    if target_fps is not None and folding_file is not None:
        raise EdgeError("--target-fps and --folding exclude each other: a folding file fixes the throughput")
    if target.open_flow is not None:  # Lattice and Gowin parts: no HLS flow, the RTL backend and open tools
        if backend == "hls":
            raise EdgeError(f"{target.name} is a {target.family} board: only the RTL backend targets it; drop "
                            "--backend hls")
        backend = "rtl"
    backend = backend or "hls"
    if bitfile and backend == "rtl" and target.open_flow is None:
        raise EdgeError("--bitfile builds a Xilinx bitstream from the HLS backend; drop --backend rtl")
    if bitfile and target.open_flow is None:
        check_bitfile_tools(target)
    loaded = load_model(model or bundled_model_path())
    opts = BuildOptions(cap=util_cap, target_fps=target_fps, folding=folding_file, top_k=top_k,
                        verify_samples=verify_samples, simulate=simulate, sim_frames=sim_frames,
                        synth=synth and not bitfile)
    log = (lambda msg: None) if as_json else (lambda msg: click.echo(msg, err=True))
    log(f"lowering {loaded.path.name} and folding for {target.name}...")
    if backend == "rtl":
        opts.synth = False
        _, report = build_rtl_model(loaded, target, opts, output, synth, log,
                                    bitstream=bitfile and target.open_flow is not None)
    else:
        _, report = build_model(loaded, target, opts, output, log)
    if bitfile and target.open_flow is None:
        report["bitfile"] = build_bitfile(output, target, log)
        write_json(output / "report.json", report)
    if as_json:
        emit_json(report)
    else:
        print_build_report(report, output)
    v = report.get("verification", {})
    r = report.get("rtl", {})
    failed = [what for what, ok in (("IR vs QONNX", v.get("passed", v.get("bit_exact", True))),
                                    ("simulation", report.get("simulation", {}).get("passed", True)),
                                    ("Verilator vs IR", r.get("rtl_vs_ir_bit_exact", True)),
                                    ("Verilator under back-pressure", r.get("backpressure", True))) if not ok]
    if failed:
        click.echo(f"error: {' and '.join(failed)} failed; see {output}/report.json", err=True)
        sys.exit(1)


def verification_status(v: dict[str, Any]) -> str:
    """bit-exact, within the stated bound of the Softmax/LayerNorm kernels, or MISMATCH."""
    if v["bit_exact"]:
        return "bit-exact"
    a = v.get("approximate")
    if v.get("passed") and a:
        return (f"bit-exact but for Softmax/LayerNorm outputs, within their bound ({a['equal_share']:.3%} equal, "
                f"at most {a['max_level_diff']} level apart; top-1 {v['top1_agreement']:.1%})")
    return "MISMATCH"


def print_build_report(report: dict[str, Any], output: Path) -> None:
    rows = [[r["name"], r["op"], r["shape"], r["bits"], r["pe"], r["simd"], r["cycles"], r["lut"], r["bram36"],
             r["dsp"]] for r in report["layers"]]
    t = report["totals"]
    res, util = t["resources"], t["utilisation"]
    fifo = t["fifo_resources"]
    deep = sum(1 for f in report["fifos"] if f["style"] != "none")
    rows.append([f"FIFOs ({deep} of {len(report['fifos'])})", "StreamingFIFO", "", "", "", "", "", fifo["lut"],
                 fifo["bram36"], fifo["dsp"]])
    rows.append(["total (cycles: first-frame latency)", "", "", "", "", "", t["latency_cycles"], res["lut"],
                 res["bram36"], res["dsp"]])
    click.echo(f"{report['source']} -> {report['board']} ({report['part']}, {report['clock_mhz']:g} MHz)")
    click.echo(render(["node", "op", "shape", "bits", "PE", "SIMD", "cycles", "LUT", "BRAM36", "DSP"], rows))
    click.echo(
        f"\nthroughput {t['fps']:,.0f} FPS (bottleneck {t['bottleneck']}, {t['bottleneck_cycles']:,} cycles/frame); "
        f"latency {t['latency_us']:,.1f} us"
    )
    click.echo(f"FIFO depths: {report['fifo_depths']}")
    fam = t.get("family_resources")
    if fam:
        cells = "logic cells (LUT4 + FF)" if report.get("family") == "ice40" else "LUT4"
        click.echo(f"in {report.get('family')} units (the model's counts, calibrated against Yosys): {fam['lut']:,} "
                   f"{cells}, {fam['ff']:,} FF, {fam['bram36']:g} BRAM36 of block RAM")
    click.echo("utilisation " + ", ".join(f"{k.upper()} {util[k]:.1%}" for k in ("lut", "ff", "bram36", "uram", "dsp"))
               + f" (cap {report['utilisation_cap']:.0%})")
    v = report.get("verification")
    if v:
        status = verification_status(v)
        ties = f", {v['mismatches_at_float_ties']} float32 ties in QONNX" if v["mismatches_at_float_ties"] else ""
        click.echo(f"IR vs QONNX golden on {v['samples']} random inputs: {status} "
                   f"({v['values_compared']:,} values{ties})")
    sim = report.get("simulation")
    if sim:
        c = sim["cycle_sim"]
        status = "PASS" if sim["passed"] else "FAIL"
        click.echo(f"C-sim (g++) on {sim['frames']} frames: {'bit-exact' if sim['csim']['passed'] else 'MISMATCH'}; "
                   f"cycle-level: {c['steady_cycles_per_frame']:,.0f} cycles/frame steady "
                   f"({'settled over' if c.get('steady_settled', True) else 'NOT settled after'} "
                   f"{c.get('steady_frames', sim['frames'])} frames; {c['steady_vs_analytical']:+.1%} vs estimate), "
                   f"{c['fps']:,.0f} FPS, first frame "
                   f"{c['first_frame_latency_us']:,.1f} us; FIFOs sized, no deadlock: "
                   f"{sim['fifo_sizing']['no_deadlock_no_throughput_loss'] if sim.get('fifo_sizing') else '-'} "
                   f"[{status}]")
    rtl = report.get("rtl")
    if rtl:
        click.echo(f"Verilator ({output}/rtl/edge_top.sv) on {rtl['frames']} frames: "
                   f"{'bit-exact' if rtl['rtl_vs_ir_bit_exact'] else 'MISMATCH'} against the IR; "
                   f"{rtl['cycles_per_frame']:,.0f} cycles/frame steady ({rtl['cycles_vs_estimate']:+.1%} vs estimate "
                   f"{rtl['estimated_cycles_per_frame']:,}), {rtl['fps']:,.0f} FPS; random back-pressure "
                   f"({rtl['backpressure_stall_percent']}% stalls on both ports): "
                   f"{'bit-exact' if rtl['backpressure'] else 'MISMATCH'}")
    ys = report.get("synth")
    if ys:
        def num(k: str, v: float) -> str:
            return f"{v:,.1f}" if k == "bram36" else f"{v:,.0f}"

        keys = ("lut", "ff", "bram36", "dsp")
        rows = [[ly["node"], ly["kind"], *[num(k, ly["resources"].get(k, 0)) + (
            f" ({num(k, ly['estimate'][k])})" if ly.get("estimate") else "") for k in keys]] for ly in ys["layers"]]
        fe = ys.get("fifo_estimate")
        rows.append(["FIFOs", "StreamingFIFO", *[num(k, ys["fifos"][k]) + (f" ({num(k, fe[k])})" if fe else "")
                                                 for k in keys]])
        rows.append(["total", "", *[f"{num(k, ys['resources'][k])} ({num(k, ys['estimate'][k])})" for k in keys]])
        click.echo(f"\n{ys['tool']} {ys['command']} ({ys['seconds']:.0f} s), estimate "
                   f"({ys.get('resource_model', 'hls')} resource model) in parentheses:")
        click.echo(render(["node", "op", "LUT", "FF", "BRAM36", "DSP"], rows))
        vv = ys.get("vivado")
        if vv:
            click.echo(f"{vv['tool']} synth_design out of context for {vv['part']} ({vv['seconds']:.0f} s): "
                       + ", ".join(f"{k.upper()} {num(k, vv['resources'][k])} ({num(k, ys['estimate'][k])})"
                                   for k in keys) + f"; report {output}/{vv['report']}")
    bs = report.get("bitstream")
    if bs:
        u = bs["utilisation"]
        click.echo(f"bitstream: {output}/{bs['path']} ({bs['bytes']:,} bytes), Fmax {bs['fmax_mhz']:g} MHz at a "
                   f"{bs['clock_mhz']:g} MHz clock; routed LUT {u['lut']:.1%}, FF {u['ff']:.1%}, block RAM "
                   f"{u['bram36']:.1%}, multipliers {u['dsp']:.1%} (Yosys {bs['seconds']['yosys']:.0f} s, nextpnr "
                   f"{bs['seconds']['nextpnr']:.0f} s, packing {bs['seconds']['pack']:.0f} s)")
        ser = bs.get("serial_sim")
        if ser:
            click.echo(f"Verilator (board top with its UART, {ser['clks_per_bit']} clocks per bit) on {ser['frames']} "
                       f"frames sent over the modelled serial line: "
                       f"{'bit-exact' if ser['bit_exact'] else 'MISMATCH'} against the IR")
        click.echo(f"deploy/: {', '.join(bs['deploy']['files'])}; with the board on USB: sh {output}/deploy/program.sh "
                   f"(UART at {bs['deploy']['baud']:,} baud), then python3 {output}/deploy/driver/driver.py --port "
                   "/dev/ttyUSB0 --input x.npy --output y.npy")
        click.echo(f"without a board (driver over the Verilator model's serial line): edge run {output}/deploy --sim "
                   f"--input {output}/deploy/sample_input.npy --output y.npy")
    if report.get("backend") == "rtl":
        extra = ", deploy/" if bs else ""
        click.echo(f"wrote {output}/ir.json, ir.npz, folding.json, report.json, report.html, model.onnx, rtl/{extra} "
                   f"(try: edge simulate {output})")
        return
    syn = report.get("synthesis", {})
    if not syn.get("ran"):
        click.echo(f"synthesis skipped ({syn.get('reason')}); to run it: {'; '.join(syn.get('commands', []))}")
    dep = report.get("deploy") or {}
    if dep.get("shell_check"):
        sc = dep["shell_check"]
        click.echo(f"deploy/: {dep['shell']} block design checked with tclsh ({sc['cells']} cells, "
                   f"{sc['connections']} connections, {sc['addresses']} address segments); PYNQ driver in "
                   f"deploy/driver/ (try: edge run {output}/deploy --sim --input {output}/deploy/sample_input.npy "
                   "--output y.npy)")
    bit = report.get("bitfile") or {}
    if bit.get("bitfile"):
        click.echo(f"bitfile: {output}/{bit['bitfile']} + .hwh")
    click.echo(f"wrote {output}/ir.json, ir.npz, folding.json, report.json, report.html, model.onnx, hls/, deploy/")


# ---------------------------------------------------------------------------------------------- simulate
@cli.command(help="""Simulate a build: C-sim of the generated HLS (g++) and the cycle-level simulation, checked
against the QONNX golden model that `edge build` stored with it. For an RTL build (`edge build --backend rtl`): the
Verilator model of its top, free running and under random back-pressure, bit-exact against the IR.

\b
BUILD is the directory `edge build` wrote. With --input x.npy (a batch in the model's own input layout) the
simulations run on it, and --output y.npy receives what the simulated accelerator computed, after the host-side
post-processing, in the QONNX model's output layout.""")
@click.argument("build_dir", type=click.Path(path_type=Path))
@click.option("--frames", type=click.IntRange(min=2), default=16, show_default=True,
              help="Random frames to simulate when no --input is given.")
@click.option("--input", "input_file", type=click.Path(path_type=Path), default=None, help="Input batch (.npy).")
@click.option("--output", "output_file", type=click.Path(path_type=Path), default=None,
              help="Write the accelerator's outputs here (.npy).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def simulate(build_dir: Path, frames: int, input_file: Path | None, output_file: Path | None, as_json: bool) -> None:
    import dataclasses

    import numpy as np

    from boards import load_board
    from edge.build import MODEL_COPY
    from fpga.build import random_inputs
    from fpga.execute import dequantize_output
    from fpga.serialize import load_graph
    from fpga.verify import verify
    from frontend.qonnx_io import load_model
    from hls.flow import read_depths, simulate_project

    graph = load_graph(build_dir)
    report = _read_report(build_dir)
    board = dataclasses.replace(load_board(report["board"]), clock_mhz=report["clock_mhz"])
    loaded = load_model(build_dir / MODEL_COPY)
    if input_file is not None:
        x = _read_batch(input_file, loaded.input_shape[1:])
    else:
        x = random_inputs(loaded, frames, seed=7)
    if len(x) < 2:
        raise EdgeError(f"{input_file}: needs at least 2 samples (the simulations measure steady state)")
    if report.get("backend") == "rtl":
        _simulate_rtl(build_dir, graph, loaded, board.clock_mhz, x, output_file, as_json)
        return
    project = build_dir / "hls"
    summary, csim_out = simulate_project(graph, board, project, x, read_depths(project))
    check = verify(graph, loaded, x)
    summary["ir_vs_golden"] = check.as_dict()
    summary["passed"] = bool(summary["passed"] and check.passed)
    if output_file is not None:
        acc = csim_out.reshape(len(x), *graph.tensors[graph.output].shape)
        np.save(output_file, dequantize_output(graph.post, acc))
    if as_json:
        emit_json(summary)
    else:
        c = summary["cycle_sim"]
        click.echo(f"{'PASS' if summary['passed'] else 'FAIL'}: {len(x)} frames; C-sim bit-exact: "
                   f"{summary['csim']['passed']}; cycle-level outputs bit-exact: {c['outputs_bit_exact']}; "
                   f"IR vs QONNX golden: {verification_status(check.as_dict())}"
                   + (f" ({check.ties} float32 ties)" if check.ties else ""))
        click.echo(f"{c['steady_cycles_per_frame']:,.1f} cycles/frame (estimate {c['analytical_cycles_per_frame']:,}), "
                   f"{c['fps']:,.0f} FPS and first-frame latency {c['first_frame_latency_us']:,.2f} us at "
                   f"{board.clock_mhz:g} MHz; simulator {c['cycles_per_second'] / 1e6:,.2f} M cycles/s")
        rows = [[k, v["busy"], v["stall"], f"{v['utilisation']:.0%}"] for k, v in c["kernels"].items()]
        click.echo(render(["kernel", "busy", "stall", "utilisation"], rows))
        if output_file is not None:
            click.echo(f"wrote {output_file}")
    if not summary["passed"]:
        sys.exit(1)


def _simulate_rtl(build_dir: Path, graph: Any, loaded: Any, clock_mhz: float, x: Any, output_file: Path | None,
                  as_json: bool) -> None:
    """`edge simulate` of an RTL build: the Verilator model of its top, checked against the IR and the golden."""
    import numpy as np

    from edge.build import RTL_DIR, simulate_rtl
    from fpga.execute import dequantize_output, execute, quantize_input
    from fpga.verify import verify
    from rtl.project import load_project
    from rtl.verilator import VerilatorError

    try:
        project = load_project(build_dir / RTL_DIR)
    except (OSError, ValueError, KeyError) as exc:
        raise EdgeError(f"{build_dir / RTL_DIR}: not an RTL project written by edge build --backend rtl "
                        f"({type(exc).__name__}); build again") from None
    x_int = quantize_input(graph.pre, x)
    expected = execute(graph, x_int)[graph.output]
    try:
        summary, out = simulate_rtl(project, x_int, expected, graph, clock_mhz)
    except VerilatorError as exc:
        raise EdgeError(f"{build_dir / RTL_DIR}: {exc}") from None
    check = verify(graph, loaded, x)
    summary["ir_vs_golden"] = check.as_dict()
    summary["passed"] = bool(summary["bit_exact"] and summary["backpressure"] and check.passed)
    if output_file is not None:
        np.save(output_file, dequantize_output(graph.post, out))
    if as_json:
        emit_json(summary)
    else:
        click.echo(f"{'PASS' if summary['passed'] else 'FAIL'}: {summary['frames']} frames on the Verilator model of "
                   f"{build_dir / RTL_DIR}/edge_top.sv; bit-exact against the IR: {summary['bit_exact']}; under "
                   f"random back-pressure: {summary['backpressure']}; IR vs QONNX golden: "
                   f"{verification_status(check.as_dict())}")
        click.echo(f"{summary['cycles_per_frame']:,.1f} cycles/frame (estimate "
                   f"{summary['estimated_cycles_per_frame']:,}), {summary['fps']:,.0f} FPS at {clock_mhz:g} MHz, first "
                   f"frame after {summary['first_frame_cycles']:,} cycles; Verilator "
                   f"{summary['cycles_per_second'] / 1e6:,.2f} M cycles/s")
        if output_file is not None:
            click.echo(f"wrote {output_file}")
    if not summary["passed"]:
        sys.exit(1)


# ---------------------------------------------------------------------------------------------- compress
@cli.command(help="""Compress a zoo model for a board: per-layer bit widths and channel counts chosen against the
FPGA resource model, each candidate fine-tuned with knowledge distillation.

\b
1. trains the uniform w4a4 baseline (--epochs) and scores it on --board;
2. screens --screen candidates (bits 2-4 per layer, 25-100% of each prunable channel group) on hardware only:
   lowering, folding (fold_to_budget) and the resource model, as `edge build` does;
3. fine-tunes a --shortlist of them from the baseline, distilled from --teacher (KL on T=4 logits + labels),
   in --workers processes; finished candidates are kept in -o DIR/search/, so a rerun resumes;
4. writes pareto.json, pareto.svg (accuracy vs FPS), train_log.jsonl, compress.json and the chosen model.onnx:
   the best candidate within --max-acc-drop points of the baseline (fewest LUT/BRAM at --target-fps, or the most
   FPS under --max-util), all five together: an interrupted run (Ctrl-C, SIGTERM) leaves the earlier ones or none.
`edge build --util-cap F` (or `--target-fps N`) of model.onnx reports the resources and FPS compress reported.""")
@click.option("--model", "model_name", default="cnv", show_default=True,
              help="Zoo architecture (see `edge train --help`), or FILE.py:FACTORY for your own Brevitas or float "
                   "PyTorch model (FACTORY() returns it; a float one is post-training quantised to w4a4 first; an "
                   "INPUT_SHAPE tuple in the file overrides the dataset's C,H,W).")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
              help="Trained state dict of --model: the baseline as given (otherwise it is trained here).")
@click.option("--dataset", default="digits", show_default=True, help="Training data (digits ships offline).")
@click.option("--board", default="pynq-z2", show_default=True, help="FPGA board name or a board .yaml.")
@click.option("--target-fps", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Frame rate to meet with the fewest resources.")
@click.option("--max-util", type=click.FloatRange(0.01, 1.0), default=0.8, show_default=True,
              help="Utilisation cap per resource (without --target-fps: the most FPS under it).")
@click.option("--max-acc-drop", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Accuracy points the chosen model may lose against the baseline.")
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True, help="Baseline training epochs.")
@click.option("--ft-epochs", type=click.IntRange(min=0), default=8, show_default=True,
              help="Distilled fine-tuning epochs per candidate.")
@click.option("--screen", type=click.IntRange(min=1), default=96, show_default=True,
              help="Candidates scored on hardware.")
@click.option("--shortlist", type=click.IntRange(min=1), default=16, show_default=True,
              help="Candidates fine-tuned.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, help="Parallel fine-tuning.")
@click.option("--ray", "ray_address", default=None, metavar="ADDRESS",
              help="Fine-tune as Ray Tune trials on the Ray cluster at ADDRESS (e.g. 10.0.0.5:6379; needs the "
                   "edge[ray] extra); --workers trials at a time.")
@click.option("--teacher", type=click.Choice(["baseline", "w8a8", "float", "none"]), default="baseline",
              show_default=True,
              help="Distillation teacher: the trained baseline, a w8a8 or a float copy of it (fine-tuned from the "
                   "baseline for --ft-epochs first), or none (labels only).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("compress"), show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print compress.json.")
def compress(model_name: str, checkpoint: Path | None, dataset: str, board: str, target_fps: float | None,
             max_util: float, max_acc_drop: float, epochs: int, ft_epochs: int, screen: int, shortlist: int,
             workers: int, ray_address: str | None, teacher: str, seed: int, output: Path, as_json: bool) -> None:
    from boards import load_board
    from boards.schema import FpgaBoard
    from edge.compress.search import SearchConfig, run_search
    from edge.zoo import ZOO

    if model_name not in ZOO and ":" not in model_name:
        raise EdgeError(f"unknown model '{model_name}'; the zoo has {', '.join(ZOO)}, or pass FILE.py:FACTORY")
    target = load_board(board)
    if not isinstance(target, FpgaBoard):
        raise EdgeError(f"board '{target.name}' is an edge device; edge compress scores FPGA resources")
    cfg = SearchConfig(model=model_name, dataset=dataset, board=target, target_fps=target_fps, max_util=max_util,
                       max_acc_drop=max_acc_drop, epochs=epochs, ft_epochs=ft_epochs, shortlist=shortlist,
                       screen=screen, workers=workers, seed=seed, checkpoint=checkpoint, ray_address=ray_address,
                       teacher=teacher)
    log = (lambda msg: None) if as_json else (lambda msg: click.echo(msg, err=True))
    summary = run_search(cfg, output, progress=not as_json, log=log)
    if as_json:
        emit_json(summary)
        return
    rows = []
    for r in [summary["baseline"], *[p for p in summary["pareto"] if p["name"] != summary["baseline"]["name"]]]:
        rows.append([r["name"] + (" (chosen)" if r["name"] == summary["chosen"]["name"] else ""),
                     f"{r['accuracy']:.2%}", f"{r['fps']:,.0f}", f"{r['resources']['lut']:,}",
                     f"{r['resources']['bram36']:g}", f"{r['utilisation']['lut']:.0%}"])
    click.echo(render(["candidate (Pareto front)", "accuracy", "FPS", "LUT", "BRAM36", "LUT %"], rows))
    c, b = summary["chosen"], summary["baseline"]
    click.echo(f"chosen: {c['accuracy']:.2%} ({(c['accuracy'] - b['accuracy']) * 100:+.2f} points), "
               f"{c['fps']:,.0f} FPS ({c['fps'] / b['fps']:.2f}x), LUT {c['resources']['lut']:,} "
               f"({c['resources']['lut'] / max(b['resources']['lut'], 1):.2f}x) -> {c['model']}")
    click.echo(f"wrote {output}/model.onnx, pareto.json, pareto.svg, compress.json, train_log.jsonl")


# ---------------------------------------------------------------------------------------------- run
@cli.command(help="""Run a build's driver (DEPLOY/driver/driver.py) without a board.

\b
With --sim the driver runs unchanged, under the real pynq 3.1 package, on a simulated board: pynq's MMIO,
pynq.allocate and AXI DMA driver talk to registers that behave as the AXI DMA's and the accelerator's do, and the
DMA moves the buffers' bytes through the cycle-level simulator of this build (raw AXI words, TLAST ends the
receive transfer). The outputs are compared with the QONNX golden model; cycles and simulated FPS are reported.
\b
pynq 3.1 pins numpy<2, so it needs its own Python: --python PATH, $EDGE_PYNQ_PYTHON, this interpreter if it has
pynq, the .venv-pynq that `make install` creates, or one edge creates on first use in ~/.cache/edge/.
On a board, copy DEPLOY to it and run `python3 driver/driver.py --bitfile ... --input ... --output ...`.
\b
Open-FPGA builds (ULX3S, iCEBreaker, Tang Nano, ...: `edge build --bitfile`) have a pyserial driver instead: with
--sim it runs unchanged against the Verilator model of the board's whole top, UART shell included, whose serial
line is a pseudo-terminal the driver opens as its port; outputs are checked the same way.
DEPLOY/sample_input.npy holds a few inputs in the model's layout to try it with.""")
@click.argument("deploy", type=click.Path(path_type=Path))
@click.option("--sim", is_flag=True, help="Run on the simulated board (required: no board is attached here).")
@click.option("--input", "input_file", type=click.Path(path_type=Path), required=True,
              help="Float inputs (.npy) in the model's input shape, batch first.")
@click.option("--output", "output_file", type=click.Path(path_type=Path), required=True,
              help="Where the driver writes the model's outputs (.npy; replaced only when the run succeeds).")
@click.option("--python", "python", default=None, help="A Python with pynq 3.1 installed.")
@click.option("--throughput", is_flag=True, help="Also run the driver's --throughput mode.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def run(deploy: Path, sim: bool, input_file: Path, output_file: Path, python: str | None, throughput: bool,
        as_json: bool) -> None:
    import numpy as np

    from edge.deploy_run import compare_with_golden, read_settings, run_deploy_sim, run_uart_sim

    settings = read_settings(deploy)
    if not sim:
        raise EdgeError(f"{deploy}: no board attached here; add --sim, or copy {deploy} to the "
                        f"{settings['board']} and run driver/driver.py there")
    x = _read_batch(input_file, tuple(settings["pre"]["raw_shape"] or settings["pre"]["onnx_shape"]))
    staged = output_file.with_name(f".{output_file.name}.{os.getpid()}.input.npy")
    # the driver writes beside the output, renamed into place when the run succeeds: an interrupted or failed run
    # leaves an earlier output as it was, or none
    partial = output_file.with_name(f".{output_file.name}.{os.getpid()}.part.npy")
    np.save(staged, x)  # float32 (int64 token ids), the layout checked: what the driver reads
    uart = bool(settings.get("uart"))
    try:
        if uart:
            result = run_uart_sim(deploy, staged, partial, log=lambda msg: click.echo(msg, err=True))
        else:
            result = run_deploy_sim(deploy, staged, partial, python, throughput,
                                    log=lambda msg: click.echo(msg, err=True))
        y = np.load(partial, allow_pickle=False)
        os.replace(partial, output_file)
    finally:
        staged.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
    result["golden"] = compare_with_golden(deploy.resolve().parent, x, y)
    result["output"] = str(output_file)
    result["passed"] = result["golden"]["bit_exact_vs_integer_model"] and result["golden"]["golden_close"]
    if as_json:
        emit_json(result)
    else:
        g = result["golden"]
        exact = "bit-exact" if g["bit_exact_vs_integer_model"] else "DIFFERENT"
        close = "within that bound" if "bound" in g["against"] else "equal up to float32 rounding"
        golden = (close if g["golden_close"] else "DIFFERENT") + (
            f" (max |diff| {g['max_abs_diff']:.2g}" + (f", top-1 agreement {g['top1_agreement']:.1%})"
                                                        if "top1_agreement" in g else ")")
            if "max_abs_diff" in g else "")
        if uart:
            click.echo(f"{'PASS' if result['passed'] else 'FAIL'}: {result['frames']} frames through driver.py "
                       f"(pyserial) over the Verilator model's serial line ({result['baud']:,} baud, "
                       f"{result['clks_per_bit']} clocks per bit) on the simulated {settings['board']}; vs the integer "
                       f"model: {exact}; vs {g['against']}: {golden}; wrote {output_file}")
            if not result["passed"]:
                sys.exit(1)
            return
        click.echo(f"{'PASS' if result['passed'] else 'FAIL'}: {result['frames']} frames through driver.py on the "
                   f"simulated {settings['board']}; vs the integer model: {exact}; vs {g['against']}: {golden}")
        click.echo(f"{result['cycles']:,} cycles in {result['batches']} DMA batch(es); "
                   f"{result['steady_cycles_per_frame']:,.1f} cycles/frame steady = {result['fps']:,.0f} FPS at "
                   f"{result['clock_mhz']:g} MHz; wrote {output_file}")
        if throughput:
            t = result["throughput"]
            click.echo(f"--throughput: {t['frames']:,} random frames in {t['cycles']:,} simulated cycles = "
                       f"{t['fps']:,.0f} FPS at {result['clock_mhz']:g} MHz (driver's wall clock here measures the "
                       f"simulator: {t['driver']['images_per_s']:,.0f} images/s)")
    if not result["passed"]:
        sys.exit(1)


# ---------------------------------------------------------------------------------------------- report
@cli.command(help="""Write BUILD_DIR/report.html from its report.json and open it in the default browser.

\b
The page is self-contained (inline SVG, no scripts, nothing fetched): throughput and latency (estimate and
cycle-level simulation), utilisation against the cap per resource, per-layer cycles with the bottleneck marked,
LUT and BRAM per layer, and every FIFO with its depth, width, implementation and simulated peak occupancy.""")
@click.argument("build_dir", type=click.Path(path_type=Path))
@click.option("--open/--no-open", "open_browser", default=True, show_default=True,
              help="Open the page in the default browser.")
def report(build_dir: Path, open_browser: bool) -> None:
    import webbrowser

    import jinja2

    from edge.report_html import write_report_html

    try:
        path = write_report_html(_read_report(build_dir), build_dir)
    except (KeyError, TypeError, AttributeError, ValueError, jinja2.TemplateError) as exc:
        raise EdgeError(f"{build_dir / 'report.json'}: missing or malformed field ({exc}); rebuild with "
                        "`edge build`") from None
    click.echo(str(path))
    if open_browser:
        webbrowser.open(path.resolve().as_uri())


def _read_report(build_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((build_dir / "report.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EdgeError(f"{build_dir}: no report.json; is this a directory written by `edge build`?") from None
    except json.JSONDecodeError as exc:
        raise EdgeError(f"{build_dir / 'report.json'}: not valid JSON ({exc})") from None


def _read_batch(path: Path, shape: tuple[int, ...]):
    import numpy as np

    try:
        x = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise EdgeError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise EdgeError(f"{path}: not a numeric .npy array ({type(exc).__name__})") from None
    if x.ndim == len(shape):
        x = x[None]
    if tuple(x.shape[1:]) != tuple(shape):
        raise EdgeError(f"{path}: samples have shape {tuple(x.shape[1:])}, the model takes {tuple(shape)} "
                        "(the QONNX model's own input layout, batch first)")
    return x.astype(np.int64) if x.dtype.kind in "iu" else x.astype(np.float32)  # integers: token ids


# ---------------------------------------------------------------------------------------------- export
@cli.command(name="export", help="""Export a QONNX model for an edge runtime, keeping the QAT scales, and verify it.

\b
Targets:
  onnx      standard QDQ ONNX (int8 Q/DQ, per-channel weights); checked exact with onnxruntime
  tflite    int8 TFLite written directly (no TensorFlow): NHWC, per-channel weights, requantisation fitted
            so that every int8 tensor equals the exact integer model; runs on LiteRT
  openvino  IR (.xml/.bin): the tflite int8 program as Q/DQ (weights <= 4 bits), else the QDQ model;
            run on the CPU, each layer's runtime precision reported
  tensorrt  QDQ ONNX in TensorRT's symmetric-int8 form plus build_engine.sh (trtexec) for the device
\b
Every export runs the result and compares it with the QONNX golden model on the digits test set (or --calib
x.npy, or random inputs): top-1 agreement >= 99.5% and max |delta| <= 1 LSB of an int8 output (the golden
outputs' range / 255); QDQ ONNX must match exactly. A failing check exits 1. A --board picks its runtime's
target. Bipolar (w1a1) values are held in int8 as -1/+1 (exact), so one BNN runs on an FPGA and on these.""")
@click.argument("model", required=False, type=click.Path(path_type=Path))
@click.option("--target", type=click.Choice(["onnx", "tflite", "openvino", "tensorrt"]), default=None,
              help="Output format (default: the board's, else onnx).")
@click.option("--board", default=None, help="Edge device whose default target to use (see `edge boards list`).")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("export"), show_default=True,
              help="Output directory (replaced atomically).")
@click.option("--calib", type=click.Path(path_type=Path), default=None, help="Verification inputs (.npy).")
@click.option("--io", "io", type=click.Choice(["float", "int8"]), default="float", show_default=True,
              help="tflite: float32 model input/output, or int8 (input scale/zero point in export.json).")
@click.option("--int8-only", is_flag=True,
              help="tflite: keep every layer in int8. By default, when the all-int8 program misses the check, "
                   "the layers no int8 requantisation reproduces run in float32 on exact integers (listed in the "
                   "report).")
@click.option("--per-layer", is_flag=True, help="Print each layer's agreement with the golden/integer model.")
@click.option("--json", "as_json", is_flag=True, help="Print the export report as JSON.")
def export_cmd(model: Path | None, target: str | None, board: str | None, output: Path, calib: Path | None,
               io: str, int8_only: bool, per_layer: bool, as_json: bool) -> None:
    from boards import load_board
    from boards.schema import EdgeDevice
    from edge.export.targets import export
    from frontend.qonnx_io import load_model

    if target is None:
        target = "onnx"
        if board is not None:
            device = load_board(board)
            if not isinstance(device, EdgeDevice):
                raise EdgeError(f"board '{device.name}' is an FPGA; use `edge build --board {device.name}`")
            target = device.export_target
    if io != "float" and target != "tflite":
        raise EdgeError("--io int8 applies to --target tflite only")
    if int8_only and target != "tflite":
        raise EdgeError("--int8-only applies to --target tflite only")
    loaded = load_model(model or bundled_model_path())
    report = export(loaded, target, output, calib, io=io, per_layer=per_layer, int8_only=int8_only)
    v = report["verification"]
    if as_json:
        emit_json(report)
    else:
        click.echo(report["path"])
        click.echo(f"verified on {v['samples']} samples ({v['data']}) with {v['runtime']}: top-1 agreement "
                   f"{v['top1_agreement']:.1%}, max |delta| {v['max_abs_diff']:.3g} = {v['max_diff_output_lsb']:.2f} "
                   f"output LSB ({v.get('max_diff_accumulator_lsb', 0):.3g} accumulator LSB) "
                   f"[{'PASS' if v['passed'] else 'FAIL'}]")
        for note in report.get("widened", []):
            click.echo(f"  precision widened: {note}")
        for note in report.get("reduced", []):
            click.echo(f"  precision reduced: {note}")
        for note in report.get("notes", []):
            click.echo(f"  note: {note}")
        if "requantisation" in report:
            rq = report["requantisation"]
            click.echo(f"  requantisation exact in {rq['exact_channels']} of {rq['channels']} channels")
            for note in rq["inexact"]:
                click.echo(f"    {note}")
        if "int8_layers" in report:
            click.echo(f"  OpenVINO runs {report['int8_layers']} of {len(report['layers'])} layers in int8")
        if "build_script" in report:
            click.echo(f"  on the device: {output}/{report['build_script']} builds the TensorRT engine")
        if per_layer:
            print_per_layer(report.get("per_layer", []))
    if not v["passed"]:
        click.echo(f"error: the {target} export does not match the golden model; see {output}/export.json",
                   err=True)
        sys.exit(1)


# ---------------------------------------------------------------------------------------------- bench
@cli.command(name="bench", help="""Measure inference latency of an exported model on this machine.

\b
MODEL is a .tflite (LiteRT), .xml (OpenVINO IR) or QDQ .onnx (onnxruntime) file, or an `edge export` output
directory. Runs --warmup untimed and --runs timed single-sample inferences on random inputs and reports init
time, latency min/p50/p90/p99/max/mean, throughput, peak RSS, runtime version, threads and the host.
The same code runs standalone on a device: copy scripts/bench_device.py (needs only numpy and one runtime);
both write the same JSON schema.""")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--runtime", type=click.Choice(["auto", "litert", "openvino", "onnxruntime"]), default="auto",
              show_default=True, help="Runtime to use; auto picks it from the file extension.")
@click.option("--threads", type=int, default=1, show_default=True, help="Inference threads.")
@click.option("--warmup", type=int, default=20, show_default=True, help="Untimed runs first.")
@click.option("--runs", type=int, default=200, show_default=True, help="Timed runs.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (schema edge-bench/1).")
@click.option("--html", "html", type=click.Path(path_type=Path), default=None,
              help="Also write a self-contained page with the latency table and a histogram of every run.")
def bench_cmd(model: Path, runtime: str, threads: int, warmup: int, runs: int, as_json: bool,
              html: Path | None) -> None:
    from edge.bench_device import BenchError, benchmark, format_table

    if model.is_dir():
        report = model / "export.json"
        if not report.is_file():
            raise EdgeError(f"{model}: a directory without export.json; pass the model file itself")
        try:
            name = json.loads(report.read_text())["path"]
        except (ValueError, KeyError):
            raise EdgeError(f"{report}: not an edge export report") from None
        model = model / Path(name).name
    bar = click.progressbar(length=runs, label="benchmarking", file=sys.stderr) if sys.stderr.isatty() else None
    try:
        if bar is not None:
            with bar:
                result = benchmark(str(model), runtime, threads, warmup, runs,
                                   progress=lambda i: bar.update(i - bar.pos))
        else:
            result = benchmark(str(model), runtime, threads, warmup, runs)
    except BenchError as exc:
        raise EdgeError(str(exc)) from None
    if as_json:
        emit_json(result)
    else:
        click.echo(format_table(result))
    if html is not None:
        from edge.report_html import write_bench_html

        try:
            write_bench_html(result, html)
        except OSError as exc:
            raise EdgeError(f"{html}: cannot write ({exc.strerror})") from None
        if not as_json:
            click.echo(f"wrote {html}")


def print_per_layer(rows: list[dict]) -> None:
    """One line per compared tensor; the first divergent one is marked."""
    from edge.table import render

    marked = False
    table = []
    for r in rows:
        mark = ""
        if r["mismatches"] and not marked:
            mark, marked = "<- first divergence", True
        table.append([r["tensor"], f"{r['mismatches']}/{r['values']}", f"{r['max_diff_lsb']:.3g}", mark])
    click.echo(render(["tensor", "differing values", "max |delta| (LSB)", ""], table))


def _quiet_onnxruntime() -> None:
    """onnxruntime logs shape-merge warnings straight to the process's stderr; errors still reach us as
    exceptions."""
    try:
        import onnxruntime

        onnxruntime.set_default_logger_severity(3)
    except ImportError:
        pass


_received: list[int] = []  # signals received: an error while one unwinds is the interrupt, not a bug


def _interrupted(signum: int, _frame: object) -> None:
    _received.append(signum)
    raise KeyboardInterrupt(signum)


def _report_interrupt(signum: int) -> None:
    click.echo(f"interrupted ({signal.Signals(signum).name})", err=True)
    sys.exit(128 + signum)


def main() -> None:
    """Entry point: user mistakes print one line and exit 2; click's own usage errors keep their format."""
    # library warnings (numpy overflow on a malformed scale, qonnx shape notes) are not the user's to read: every
    # problem they hint at is checked and reported as one line
    warnings.simplefilter("ignore")
    _quiet_onnxruntime()
    # SIGTERM (a job scheduler, `kill`, a closed CI step) unwinds like Ctrl-C: output directories are written
    # beside their target and renamed into place at the end, so an interrupted command leaves none behind
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)
    try:
        cli.main(standalone_mode=False)
    except (KeyboardInterrupt, click.exceptions.Abort) as exc:
        # click turns Ctrl-C into Abort; the signal's number rides on the KeyboardInterrupt it wraps
        cause = exc if isinstance(exc, KeyboardInterrupt) else exc.__cause__
        args = cause.args if isinstance(cause, KeyboardInterrupt) else ()
        signum = args[0] if args and isinstance(args[0], int) else int(signal.SIGINT)
        _report_interrupt(signum)
    except EdgeError as exc:
        if _received:  # a helper process stopped by the same signal
            _report_interrupt(_received[0])
        # names from a model file may hold any bytes: escape control characters so the error stays one line
        text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(exc))
        click.echo(f"error: {text}", err=True)
        sys.exit(exc.exit_code)
    except MemoryError:
        click.echo("error: out of memory: the model's tensors are too large for this machine (check its input "
                   "shape)", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception:
        # the signal's KeyboardInterrupt, raised inside an import or a library's own handler, can surface as another
        # error (a partly initialised module): with a signal received, that error is the interrupt
        if _received:
            _report_interrupt(_received[0])
        raise


if __name__ == "__main__":
    main()
