"""Benchmark (not a test): post-training quantisation accuracy per method on digits.

Float models trained here (the plain-PyTorch CNN of tests/ptq_models.py with BatchNorm, ReLU6, depthwise + residual,
AdaptiveAvgPool, at 12 and 32 channels; the zoo's CNV in float), then `edge.ptq` at w8a8, w4a8 and w4a4 with each
method; top-1 on the digits test split (calibration: 512 training images).

    python bench/ptq_methods.py [--epochs 40] [--out bench/results/ptq_methods.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.data import load_digits_dataset  # noqa: E402
from edge.ptq import Recipe, parse_method, ptq  # noqa: E402
from edge.ptq.flow import run  # noqa: E402
from edge.table import render  # noqa: E402

METHODS = ("minmax", "percentile", "percentile+bias", "mse", "mse+bias", "mse+equalize+bias", "mse+equalize+gptq+bias")
BITS = ((8, 8), (4, 8), (4, 4))


def train_float(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int) -> nn.Module:
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
        sched.step()
    return model.eval()


def models() -> dict[str, nn.Module]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from ptq_models import cnn, cnn_wide

    from edge.zoo import build_float_model

    # the zoo's float CNV is written with Brevitas layers whose quantisers are off: edge.ptq takes them as torch layers
    return {"plain CNN (12 ch)": cnn(), "plain CNN (32 ch)": cnn_wide(),
            "zoo CNV (float)": build_float_model("cnv", (1, 8, 8), 10)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ptq_methods.json")
    args = parser.parse_args()
    data = load_digits_dataset()
    calib = data.x_train[:512]
    results: dict[str, dict] = {}
    rows = []
    for name, model in models().items():
        train_float(model, data.x_train, data.y_train, args.epochs)
        float_acc = float((run(model, data.x_test).argmax(1) == data.y_test).mean())
        results[name] = {"float": float_acc, "runs": []}
        rows.append([name, "float", "-", f"{float_acc:.2%}", "", ""])
        for wb, ab in BITS:
            for method in METHODS:
                cal, steps = parse_method(method)
                recipe = replace(Recipe(), wbits=(wb, wb), abits=ab, calibration=cal, steps=steps)
                t0 = time.perf_counter()
                try:
                    q = ptq(model, calib, recipe, progress=False)
                except Exception as exc:  # noqa: BLE001 - a benchmark records what fails
                    results[name]["runs"].append({"bits": f"w{wb}a{ab}", "method": method,
                                                  "error": f"{type(exc).__name__}: {exc}"[:200]})
                    rows.append([name, f"w{wb}a{ab}", method, "error", "", str(exc)[:60]])
                    continue
                secs = time.perf_counter() - t0
                acc = float((run(q.model, data.x_test).argmax(1) == data.y_test).mean())
                results[name]["runs"].append({"bits": f"w{wb}a{ab}", "method": method, "accuracy": acc,
                                              "delta_points": round((acc - float_acc) * 100, 2), "mode": q.mode,
                                              "seconds": round(secs, 2)})
                rows.append([name, f"w{wb}a{ab}", method, f"{acc:.2%}", f"{(acc - float_acc) * 100:+.2f}",
                             f"{secs:.1f}"])
    print(render(["model", "bits", "method", "top-1", "pts vs float", "PTQ s"], rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"dataset": "digits", "calibration_samples": len(calib), "epochs": args.epochs,
                                    "results": results}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
