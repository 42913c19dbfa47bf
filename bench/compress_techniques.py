"""Benchmark (not a test): each compression technique alone, on digits, against the uniform w4a4 baseline.

Per model (zoo tfc, zoo cnv, and a model written in plain PyTorch idioms, not from the zoo): the baseline; channel
pruning (50%, BatchNorm scale) fine-tuned with and without distillation; narrower bits (hidden layers w3a3 and
w2a2) with and without distillation; low-rank factorisation of the largest fully connected layer; unstructured
magnitude pruning. Every variant gets the same fine-tuning budget from the trained baseline. Columns: top-1
accuracy; FPS and LUT/BRAM on pynq-z2 folded for the most FPS under 80%; LUT/BRAM folded for the baseline's FPS
(equal throughput); TFLite int8 latency (LiteRT, 1 thread, p50) where the export verifies.

    python bench/compress_techniques.py [--epochs 10] [--ft-epochs 8] [--models tfc,cnv,user]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import brevitas.nn as qnn  # noqa: E402

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
    set_bit_widths,
    sparsity_report,
    weight_layers,
)
from edge.data import load_digits_dataset  # noqa: E402
from edge.errors import EdgeError  # noqa: E402
from edge.qonnx_io import load_model  # noqa: E402
from edge.table import render  # noqa: E402
from edge.train import export_qonnx_file  # noqa: E402
from edge.zoo import build_model, model_input_shape  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


class PlainNet(nn.Module):
    """Written as people write PyTorch: modules as attributes, `x.reshape(x.shape[0], -1)` to flatten."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.c1 = qnn.QuantConv2d(1, 16, 3, padding=1, weight_bit_width=4, bias=False)
        self.b1 = nn.BatchNorm2d(16)
        self.r1 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.c2 = qnn.QuantConv2d(16, 32, 3, padding=1, weight_bit_width=4, bias=False)
        self.b2 = nn.BatchNorm2d(32)
        self.r2 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = qnn.QuantLinear(32 * 4 * 4, 64, weight_bit_width=4, bias=False)
        self.b3 = nn.BatchNorm1d(64)
        self.r3 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.fc2 = qnn.QuantLinear(64, 10, weight_bit_width=4, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.r1(self.b1(self.c1(self.inp(x))))
        x = self.pool(self.r2(self.b2(self.c2(x))))
        x = self.r3(self.b3(self.fc1(x.reshape(x.shape[0], -1))))
        return self.fc2(x)


def make(name: str, data) -> tuple[nn.Module, tuple[int, ...]]:
    torch.manual_seed(0)
    if name == "user":
        return PlainNet(), (1, 8, 8)
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


def measure(label: str, model: nn.Module, shape: tuple[int, ...], acc: float, base_fps: float | None,
            board, tmp: Path, note: str = "") -> dict[str, Any]:
    hw = hardware_score(model, shape, board, 0.8)
    try:
        eq = hardware_score(model, shape, board, 0.8, base_fps) if base_fps else hw
    except EdgeError:
        eq = None
    return {"variant": label, "accuracy": acc, "fps": hw["fps"], "lut": hw["resources"]["lut"],
            "bram36": hw["resources"]["bram36"],
            "lut_at_base_fps": eq["resources"]["lut"] if eq else None,
            "bram_at_base_fps": eq["resources"]["bram36"] if eq else None,
            "tflite_p50_ms": tflite_p50(model, shape, tmp), "note": note}


def run_model(name: str, epochs: int, ft: int, board) -> list[dict[str, Any]]:
    data = load_digits_dataset()
    base, shape = make(name, data)
    acc = fine_tune(base, data, shape, epochs=epochs, lr=0.01)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        base_row = measure("baseline w4a4", base, shape, acc, None, board, tmp)
        rows.append(base_row)
        fps0 = base_row["fps"]

        for kd in (False, True):
            m = copy.deepcopy(base)
            prune_by_ratio(m, shape, 0.5, criterion="bn")
            a = fine_tune(m, data, shape, epochs=ft, teacher=base if kd else None)
            rows.append(measure(f"prune 50% {'+KD' if kd else 'no KD'}", m, shape, a, fps0, board, tmp))
        for bits in (3, 2):
            for kd in (False, True):
                m = copy.deepcopy(base)
                hidden = list(weight_layers(m))[1:-1]
                acts = list(activation_layers(m))[1:]
                set_bit_widths(m, weights={n: bits for n in hidden}, activations={n: bits for n in acts})
                a = fine_tune(m, data, shape, epochs=ft, teacher=base if kd else None)
                rows.append(measure(f"bits w{bits}a{bits} {'+KD' if kd else 'no KD'}", m, shape, a, fps0, board,
                                    tmp))
        m = copy.deepcopy(base)
        modules = dict(m.named_modules())
        linear = max((n for n in weight_layers(m) if isinstance(modules[n], qnn.QuantLinear)),
                     key=lambda n: modules[n].weight.numel())
        rank = max(1, max_useful_rank(modules[linear]) // 2)
        factorize(m, linear, rank)
        a = fine_tune(m, data, shape, epochs=ft, teacher=base)
        rows.append(measure(f"low-rank {linear} r={rank} +KD", m, shape, a, fps0, board, tmp))
        m = copy.deepcopy(base)
        masks = magnitude_prune(m, 0.6)
        a = fine_tune(m, data, shape, epochs=ft, masks=masks, teacher=base)
        sp = sparsity_report(m)
        rows.append(measure("magnitude 60% +KD", m, shape, a, fps0, board, tmp,
                            note=f"{sum(sp.values()) / len(sp):.0%} zero weights; the MVAU does not skip them"))
    for r in rows:
        r["model"] = name
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--ft-epochs", type=int, default=8)
    ap.add_argument("--models", default="tfc,cnv,user")
    ap.add_argument("--out", type=Path, default=RESULTS / "compress_techniques.json")
    args = ap.parse_args()
    board = load_board("pynq-z2")
    t0 = time.perf_counter()
    rows = []
    for name in args.models.split(","):
        rows += run_model(name, args.epochs, args.ft_epochs, board)

    def fmt(v: Any, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    table = [[r["model"], r["variant"], f"{r['accuracy']:.2%}", f"{r['fps']:,.0f}", f"{r['lut']:,}",
              fmt(r["bram36"], "g"), fmt(r["lut_at_base_fps"], ","), fmt(r["bram_at_base_fps"], "g"),
              fmt(r["tflite_p50_ms"], ".4f"), r["note"]] for r in rows]
    print(render(["model", "variant", "top-1", "FPS (80% cap)", "LUT", "BRAM36", "LUT @ base FPS",
                  "BRAM @ base FPS", "TFLite p50 ms", "note"], table))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"board": "pynq-z2", "epochs": args.epochs, "ft_epochs": args.ft_epochs,
                                    "seconds": round(time.perf_counter() - t0, 1), "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
