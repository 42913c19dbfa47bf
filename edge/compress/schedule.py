"""Iterative structured pruning: remove channels in several steps, fine-tuning between them, so the network adapts
to each cut before the next (usually keeps more accuracy than one cut of the same size)."""

from __future__ import annotations

import numpy as np
from torch import nn

from edge.compress.channels import analyse_channels, prune_by_ratio
from edge.compress.distill import fine_tune
from edge.data import Dataset
from frontend.errors import EdgeError


def prune_iteratively(model: nn.Module, data: Dataset, shape: tuple[int, ...], ratio: float, steps: int = 3,
                      epochs: int = 2, criterion: str = "l1", teacher: nn.Module | None = None,
                      seed: int = 0, log: list[dict] | None = None) -> float:
    """Prune `ratio` of every prunable group's channels in `steps` geometric steps (in place), fine-tuning `epochs`
    after each (distilled when a teacher is given). Returns the final test accuracy."""
    if not 0 < ratio < 1 or steps < 1:
        raise EdgeError(f"prune_iteratively: ratio must be in (0, 1) and steps >= 1, got {ratio} and {steps}")
    original = {g.id: g.channels for g in analyse_channels(model, shape).groups if g.prunable}
    acc = 0.0
    for step in range(1, steps + 1):
        now = {g.id: g.channels for g in analyse_channels(model, shape).groups if g.prunable}
        target = {gid: max(1, int(np.round(original[gid] * (1 - ratio) ** (step / steps)))) for gid in original}
        prune_by_ratio(model, shape, {gid: 1 - target[gid] / now[gid] for gid in now}, criterion=criterion)
        step_log: list[dict] = []
        acc = fine_tune(model, data, shape, epochs=epochs, teacher=teacher, seed=seed + step, log=step_log)
        if log is not None:
            log.extend({"step": step, "channels": target, **row} for row in step_log)
    return acc
