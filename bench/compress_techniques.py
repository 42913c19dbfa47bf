"""Benchmark (not a test): each compression technique alone, on digits, against the uniform w4a4 baseline.

Per model (zoo tfc, zoo cnv, and bench/plain_cnn.py, a CNN in plain PyTorch idioms, not from the zoo), one table
per technique, every variant fine-tuned from the same trained baseline with the same budget:
  pruning alone      channels removed (BatchNorm scale), 25/50/75% one-shot and 50% in 3 steps; labels only
  bits alone         hidden layers w3a3 and w2a2 (first/last layer and the 8-bit input kept); labels only
  distillation       prune 50% and w2a2, teacher: none / the w4a4 baseline / a w8a8 copy / a float copy
  low-rank           the largest fully connected layer factorised at half its useful rank
  magnitude          60% unstructured sparsity (the MVAU multiplies every weight: nothing changes on the FPGA)
Columns: top-1 accuracy, mean over --seeds fine-tuning seeds (digits' test split has 359 images: one image is
0.28 points); FPS and LUT/BRAM36 on pynq-z2 folded for the most FPS under 80%; LUT/BRAM36 folded for the
baseline's FPS (equal throughput); TFLite int8 latency (LiteRT, 1 thread, p50), measured once per distinct graph
(bit widths and teachers do not change the int8 graph).

    python bench/compress_techniques.py [--epochs 10] [--ft-epochs 8] [--seeds 3] [--models tfc,cnv,user]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import brevitas.nn as qnn  # noqa: E402

from bench.plain_cnn import INPUT_SHAPE, PlainNet  # noqa: E402
from boards import load_board  # noqa: E402
from edge.bench_device import benchmark  # noqa: E402
from edge.compress import (  # noqa: E402
    activation_layers,
    factorize,
    fine_tune,
    hardware_score,
    magnitude_prune,
    max_useful_rank,
    prune_by_ratio,
    prune_iteratively,
    set_bit_widths,
    sparsity_report,
    train_teacher,
    weight_layers,
)
from edge.data import Dataset, load_digits_dataset  # noqa: E402
from edge.table import render  # noqa: E402
from edge.train import export_qonnx_file  # noqa: E402
from edge.zoo import build_model, model_input_shape  # noqa: E402
from frontend.errors import EdgeError  # noqa: E402
from frontend.qonnx_io import load_model  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TEACHERS = ("none", "baseline", "w8a8", "float")


def make(name: str, data: Dataset) -> tuple[nn.Module, tuple[int, ...]]:
    torch.manual_seed(0)
    if name == "user":
        return PlainNet(), INPUT_SHAPE
    return build_model(name, data.image_shape, data.num_classes, 4, 4), model_input_shape(name, data.image_shape)


def tflite_p50(model: nn.Module, shape: tuple[int, ...], tmp: Path) -> float | None:
    from edge.export.targets import export

    path = tmp / "m.onnx"
    export_qonnx_file(model, shape, path, {})
    try:
        export(load_model(path), "tflite", tmp / "tfl")
    except EdgeError:
        return None
    tfl = next((tmp / "tfl").glob("*.tflite"))
    return benchmark(str(tfl), "litert", threads=1, warmup=20, runs=200)["latency_ms"]["p50"]


def prune(ratio: float) -> Callable[[nn.Module, tuple[int, ...]], None]:
    def apply(m: nn.Module, shape: tuple[int, ...]) -> None:
        prune_by_ratio(m, shape, ratio, criterion="bn")
    return apply


def narrow(bits: int) -> Callable[[nn.Module, tuple[int, ...]], None]:
    def apply(m: nn.Module, shape: tuple[int, ...]) -> None:
        hidden = list(weight_layers(m))[1:-1]
        acts = list(activation_layers(m))[1:]
        set_bit_widths(m, weights={n: bits for n in hidden}, activations={n: bits for n in acts})
    return apply


def low_rank(m: nn.Module, shape: tuple[int, ...]) -> str:
    modules = dict(m.named_modules())
    linear = max((n for n in weight_layers(m) if isinstance(modules[n], qnn.QuantLinear)),
                 key=lambda n: modules[n].weight.numel())
    rank = max(1, max_useful_rank(modules[linear]) // 2)
    factorize(m, linear, rank)
    return f"{linear} r={rank}"


def run_model(name: str, epochs: int, ft: int, seeds: int, board) -> list[dict[str, Any]]:
    data = load_digits_dataset()
    base, shape = make(name, data)
    base_acc = fine_tune(base, data, shape, epochs=epochs, lr=0.01)
    teachers = {kind: train_teacher(kind, base, data, shape, ft)[0] for kind in TEACHERS}
    rows: list[dict[str, Any]] = []
    hw_cache: dict[str, dict[str, Any]] = {}
    tfl_cache: dict[str, float | None] = {}

    def add(table: str, variant: str, structure: str, hw_key: str, transform, teacher: str = "none",
            iterative: bool = False, masked: float = 0.0) -> None:
        accs, model, note = [], None, ""
        for seed in range(seeds):
            m = copy.deepcopy(base)
            masks = None
            if iterative:
                accs.append(prune_iteratively(m, data, shape, 0.5, steps=3, epochs=max(ft // 3, 1),
                                              criterion="bn", teacher=teachers[teacher], seed=seed))
            else:
                note = (transform(m, shape) or "") if transform else ""
                if masked:
                    masks = magnitude_prune(m, masked)
                accs.append(fine_tune(m, data, shape, epochs=ft, teacher=teachers[teacher], masks=masks, seed=seed))
            model = model if model is not None else m
        if masked:
            sp = sparsity_report(model)
            note = f"{sum(sp.values()) / len(sp):.0%} zero weights; the MVAU still multiplies them"
        if hw_key not in hw_cache:
            hw = hardware_score(model, shape, board, 0.8)
            try:
                eq = hardware_score(model, shape, board, 0.8, rows[0]["fps"] if rows else None)
            except EdgeError:
                eq = None
            hw_cache[hw_key] = {"fps": hw["fps"], "lut": hw["resources"]["lut"], "bram36": hw["resources"]["bram36"],
                                "lut_at_base_fps": eq["resources"]["lut"] if eq else None,
                                "bram_at_base_fps": eq["resources"]["bram36"] if eq else None}
        if structure not in tfl_cache:
            with tempfile.TemporaryDirectory() as d:
                tfl_cache[structure] = tflite_p50(model, shape, Path(d))
        rows.append({"model": name, "table": table, "variant": variant, "teacher": teacher,
                     "accuracy": statistics.mean(accs), "accuracy_seeds": accs, **hw_cache[hw_key],
                     "tflite_p50_ms": tfl_cache[structure], "note": note})

    rows.append({"model": name, "table": "baseline", "variant": "w4a4 baseline", "teacher": "-",
                 "accuracy": base_acc, "accuracy_seeds": [base_acc], **_hw(base, shape, board),
                 "tflite_p50_ms": None, "note": ""})
    with tempfile.TemporaryDirectory() as d:
        rows[0]["tflite_p50_ms"] = tfl_cache["base"] = tflite_p50(base, shape, Path(d))
    hw_cache["base"] = {k: rows[0][k] for k in ("fps", "lut", "bram36", "lut_at_base_fps", "bram_at_base_fps")}
    for ratio in (0.25, 0.5, 0.75):
        add("pruning", f"prune {ratio:.0%}", f"p{ratio}", f"p{ratio}", prune(ratio))
    add("pruning", "prune 50% in 3 steps", "p0.5", "p0.5", None, iterative=True)
    for bits in (3, 2):
        add("bits", f"hidden w{bits}a{bits}", "base", f"b{bits}", narrow(bits))
    for teacher in TEACHERS:
        add("distillation", "prune 50%", "p0.5", "p0.5", prune(0.5), teacher=teacher)
        add("distillation", "hidden w2a2", "base", "b2", narrow(2), teacher=teacher)
    add("low-rank", "low-rank", "lowrank", "lowrank", low_rank)
    add("low-rank", "low-rank", "lowrank", "lowrank", low_rank, teacher="baseline")
    add("magnitude", "magnitude 60%", "base", "base", None, masked=0.6)
    for r in rows[1:]:
        r["variant"] = r["variant"] if r["table"] != "low-rank" else f"low-rank {r['note']}"
    rows[0]["teacher_accuracy"] = {k: (None if v is None else fine_tune(v, data, shape, epochs=0))
                                   for k, v in teachers.items()}
    return rows


def _hw(model: nn.Module, shape: tuple[int, ...], board) -> dict[str, Any]:
    hw = hardware_score(model, shape, board, 0.8)
    return {"fps": hw["fps"], "lut": hw["resources"]["lut"], "bram36": hw["resources"]["bram36"],
            "lut_at_base_fps": hw["resources"]["lut"], "bram_at_base_fps": hw["resources"]["bram36"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--ft-epochs", type=int, default=8)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--models", default="tfc,cnv,user")
    ap.add_argument("--out", type=Path, default=RESULTS / "compress_techniques.json")
    args = ap.parse_args()
    board = load_board("pynq-z2")
    t0 = time.perf_counter()
    rows = []
    for name in args.models.split(","):
        rows += run_model(name, args.epochs, args.ft_epochs, args.seeds, board)

    def fmt(v: Any, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    base = {r["model"]: r for r in rows if r["table"] == "baseline"}
    for table in ("pruning", "bits", "distillation", "low-rank", "magnitude"):
        body = []
        for r in [r for r in rows if r["table"] in (table, "baseline")]:
            b = base[r["model"]]
            body.append([r["model"], r["variant"], r["teacher"], f"{r['accuracy']:.2%}",
                         f"{(r['accuracy'] - b['accuracy']) * 100:+.2f}", f"{r['fps']:,.0f}",
                         f"{r['fps'] / b['fps']:.2f}x", f"{r['lut']:,}", fmt(r["bram36"], "g"),
                         fmt(r["lut_at_base_fps"], ","), fmt(r["bram_at_base_fps"], "g"),
                         fmt(r["tflite_p50_ms"], ".4f"), r["note"] if table == "magnitude" else ""])
        print(f"\n{table}")
        print(render(["model", "variant", "teacher", "top-1", "pts", "FPS (80%)", "FPS x", "LUT", "BRAM36",
                      "LUT @ base FPS", "BRAM @ base FPS", "TFLite p50 ms", "note"], body))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"board": "pynq-z2", "epochs": args.epochs, "ft_epochs": args.ft_epochs,
                                    "seeds": args.seeds, "seconds": round(time.perf_counter() - t0, 1),
                                    "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
