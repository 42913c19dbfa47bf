"""Benchmark (not a test): digits test accuracy of every zoo model at w1a1, w2a2, w4a4, w8a8 (default training).

    python bench/zoo_accuracy.py [--epochs 40] [--out bench/results/zoo_accuracy.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from edge.data import load_digits_dataset
from edge.table import render
from edge.train import TrainConfig, train
from edge.zoo import ZOO

BITS = (1, 2, 4, 8)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "zoo_accuracy.json")
    args = parser.parse_args()
    data = load_digits_dataset()
    results: dict[str, dict[str, dict]] = {}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in ZOO:
            results[name] = {}
            row: list[object] = [name]
            for bits in BITS:
                cfg = TrainConfig(model=name, wbits=bits, abits=bits, epochs=args.epochs, float_baseline=bits == 1)
                m = train(cfg, data, Path(tmp) / f"{name}{bits}", progress=False)
                results[name][f"w{bits}a{bits}"] = {k: m[k] for k in ("quant_test_accuracy", "qonnx_test_accuracy",
                                                                       "float_test_accuracy", "train_seconds")}
                if bits == 1:
                    row.append(f"{m['float_test_accuracy']:.1%}")
                row.append(f"{m['qonnx_test_accuracy']:.1%}")
                print(f"{name} w{bits}a{bits}: {m['qonnx_test_accuracy']:.2%} ({m['train_seconds']:.1f} s)",
                      file=sys.stderr)
            rows.append(row)
    print(f"digits test accuracy (359 images), QONNX golden model, {args.epochs} epochs")
    print(render(["model", "float", "w1a1", "w2a2", "w4a4", "w8a8"], rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
