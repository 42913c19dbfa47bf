"""Quantisation-aware training of zoo models and export to QONNX with the metrics that describe them."""

from __future__ import annotations

import random
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn
from tqdm import tqdm

from edge.data import Dataset
from edge.fsutil import atomic_output_dir, write_json
from edge.zoo import build_float_model, build_model, model_input_shape
from frontend.qonnx_io import GoldenModel, load_model

MODEL_FILE = "model.onnx"
CHECKPOINT_FILE = "model.pt"
METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run; the same config and seed give the same model."""

    model: str
    wbits: int
    abits: int
    dataset: str = "digits"
    epochs: int = 40
    batch_size: int = 64
    lr: float = 0.01
    seed: int = 0
    float_baseline: bool = True

    def command(self) -> str:
        return (
            f"edge train --model {self.model} --wbits {self.wbits} --abits {self.abits} "
            f"--dataset {self.dataset} --epochs {self.epochs} --batch-size {self.batch_size} "
            f"--lr {self.lr:g} --seed {self.seed}"
        )


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _inputs(x: np.ndarray, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.from_numpy(x.reshape(len(x), *shape))


def logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Plain tensor outputs whether or not the last layer returns a Brevitas QuantTensor."""
    out = model(x)
    return out.value if hasattr(out, "value") else out


def accuracy(model: nn.Module, x: torch.Tensor, y: np.ndarray) -> float:
    model.eval()
    with torch.no_grad():
        pred = logits(model, x).argmax(1).numpy()
    return float((pred == y).mean())


def fit(model: nn.Module, cfg: TrainConfig, data: Dataset, shape: tuple[int, ...], label: str,
        progress: bool) -> float:
    """Adam with cosine decay and cross-entropy; returns the final test accuracy."""
    seed_everything(cfg.seed)
    x_train, y_train = _inputs(data.x_train, shape), torch.from_numpy(data.y_train)
    x_test = _inputs(data.x_test, shape)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(cfg.seed)
    bar = tqdm(range(cfg.epochs), desc=f"train {label}", unit="epoch", disable=not progress, leave=False)
    acc = 0.0
    for _epoch in bar:
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        total, n = 0.0, 0
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            opt.zero_grad()
            loss = loss_fn(logits(model, x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            n += len(idx)
        sched.step()
        acc = accuracy(model, x_test, data.y_test)
        bar.set_postfix(loss=f"{total / n:.3f}", acc=f"{acc:.3f}")
    return acc


def export_qonnx_file(model: nn.Module, shape: tuple[int, ...], path: Path, metadata: dict[str, str],
                      example: torch.Tensor | None = None) -> None:
    """Export with Brevitas' QONNX exporter and record how the model was made in the ONNX metadata.

    `example` (one sample, batch first) sets the input's dtype, e.g. int64 token ids; zeros of `shape` otherwise."""
    from brevitas.export import export_qonnx

    from edge.a2q import bake_accumulator_aware_weights, quantised_weights

    model.eval()
    example = torch.zeros(1, *shape) if example is None else example
    a2q = quantised_weights(model, example)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # dynamo=False: the TorchScript tracer gives clean graphs (one node per layer, readable names) and exports
        # in ~0.1 s; the dynamo exporter is ~20x slower and scatters Brevitas' quantisers into many small ops.
        export_qonnx(model, input_t=example, export_path=str(path), dynamo=False)
    proto = onnx.load(str(path))
    if a2q:  # Brevitas exports A2Q layers' raw weights: write the ones the model computes with
        bake_accumulator_aware_weights(proto, a2q)
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


def train(cfg: TrainConfig, data: Dataset, out_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Train (and optionally a float baseline), export QONNX, check it against PyTorch, write all outputs."""
    shape = model_input_shape(cfg.model, data.image_shape)
    float_acc = None
    if cfg.float_baseline:
        seed_everything(cfg.seed)
        float_acc = fit(build_float_model(cfg.model, data.image_shape, data.num_classes), cfg, data, shape,
                        f"{cfg.model} float", progress)
    seed_everything(cfg.seed)
    model = build_model(cfg.model, data.image_shape, data.num_classes, cfg.wbits, cfg.abits)
    t0 = time.perf_counter()
    quant_acc = fit(model, cfg, data, shape, f"{cfg.model} w{cfg.wbits}a{cfg.abits}", progress)
    train_s = time.perf_counter() - t0

    with atomic_output_dir(out_dir) as tmp:
        onnx_path = tmp / MODEL_FILE
        export_qonnx_file(model, shape, onnx_path, {
            "edge.model": cfg.model, "edge.wbits": str(cfg.wbits), "edge.abits": str(cfg.abits),
            "edge.dataset": cfg.dataset, "edge.command": cfg.command(),
        })
        loaded = load_model(onnx_path)
        onnx.save(loaded.model.model, str(onnx_path))  # ship the cleaned, annotated graph
        x_test = data.x_test.reshape(len(data.x_test), *shape)
        golden = GoldenModel(loaded).run(x_test)
        with torch.no_grad():
            torch_out = logits(model, torch.from_numpy(x_test)).numpy()
        torch.save({"config": asdict(cfg), "state_dict": model.state_dict(), "input_shape": shape},
                   tmp / CHECKPOINT_FILE)
        metrics = {
            "model": cfg.model,
            "dataset": cfg.dataset,
            "wbits": cfg.wbits,
            "abits": cfg.abits,
            "input_shape": list(shape),
            "num_classes": data.num_classes,
            "train_samples": len(data.y_train),
            "test_samples": len(data.y_test),
            "parameters": int(sum(p.numel() for n, p in model.named_parameters() if "weight" in n or "bias" in n)),
            "float_test_accuracy": float_acc,
            "quant_test_accuracy": quant_acc,
            "qonnx_test_accuracy": float((golden.argmax(1) == data.y_test).mean()),
            "qonnx_vs_torch": {
                "top1_agreement": float((golden.argmax(1) == torch_out.argmax(1)).mean()),
                "max_abs_diff": float(np.abs(golden - torch_out).max()),
            },
            "train_seconds": round(train_s, 2),
            "epochs": cfg.epochs,
            "seed": cfg.seed,
            "command": cfg.command(),
        }
        write_json(tmp / METRICS_FILE, metrics)
    return metrics
