"""Short QAT fine-tuning with knowledge distillation: KL divergence between temperature-scaled teacher and student
logits plus cross-entropy on the labels; optional masks keep pruned weights at zero."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn
from tqdm import tqdm

from edge.data import Dataset
from edge.train import accuracy, logits, seed_everything


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, temperature: float,
                      alpha: float) -> torch.Tensor:
    """alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * CE(student, labels)."""
    soft = F.kl_div(F.log_softmax(student / temperature, dim=1), F.softmax(teacher / temperature, dim=1),
                    reduction="batchmean") * temperature**2
    return alpha * soft + (1 - alpha) * F.cross_entropy(student, labels)


def fine_tune(model: nn.Module, data: Dataset, shape: tuple[int, ...], epochs: int, lr: float = 0.005,
              teacher: nn.Module | None = None, temperature: float = 4.0, alpha: float = 0.7,
              masks: dict[str, torch.Tensor] | None = None, batch_size: int = 64, seed: int = 0,
              progress: bool = False, log: list[dict] | None = None) -> float:
    """Adam with cosine decay for `epochs`; with a teacher the loss is distillation_loss, else cross-entropy.
    Returns the test accuracy; appends one record per epoch to `log`."""
    seed_everything(seed)
    x_train = torch.from_numpy(data.x_train.reshape(len(data.x_train), *shape))
    y_train = torch.from_numpy(data.y_train)
    x_test = torch.from_numpy(data.x_test.reshape(len(data.x_test), *shape))
    params = dict(model.named_parameters())
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
    gen = torch.Generator().manual_seed(seed)
    if teacher is not None:
        teacher.eval()
    acc = accuracy(model, x_test, data.y_test) if epochs == 0 else 0.0
    for epoch in tqdm(range(epochs), desc="fine-tune", unit="epoch", disable=not progress, leave=False):
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        total, n = 0.0, 0
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad()
            out = logits(model, x_train[idx])
            if teacher is None:
                loss = F.cross_entropy(out, y_train[idx])
            else:
                with torch.no_grad():
                    target = logits(teacher, x_train[idx])
                loss = distillation_loss(out, target, y_train[idx], temperature, alpha)
            loss.backward()
            opt.step()
            if masks:
                with torch.no_grad():
                    for name, mask in masks.items():
                        params[name].mul_(mask)
            total += float(loss.detach()) * len(idx)
            n += len(idx)
        sched.step()
        acc = accuracy(model, x_test, data.y_test)
        if log is not None:
            log.append({"epoch": epoch + 1, "loss": total / max(n, 1), "accuracy": acc,
                        "distilled": teacher is not None})
    return acc
