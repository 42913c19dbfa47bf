"""Shared fixtures: the digits dataset and models trained for real (few epochs) once per test session."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.data import Dataset, load_digits_dataset
from edge.train import TrainConfig, train
from edge.zoo import ZOO

TEST_EPOCHS = 15


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_digits_dataset()


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, digits: Dataset) -> Callable[..., Path]:
    """Train a zoo model on digits once per (model, wbits, abits, epochs) and return its output directory."""
    cache: dict[tuple[str, int, int, int], Path] = {}

    def get(model: str, wbits: int, abits: int, epochs: int = TEST_EPOCHS) -> Path:
        key = (model, wbits, abits, epochs)
        if key not in cache:
            out = tmp_path_factory.mktemp(f"{model}_w{wbits}a{abits}_e{epochs}") / "run"
            lr = ZOO[model].lr if model in ZOO else 0.01  # the zoo's own learning rate (a transformer needs less)
            cfg = TrainConfig(model=model, wbits=wbits, abits=abits, epochs=epochs, lr=lr, float_baseline=False)
            train(cfg, digits, out, progress=False)
            cache[key] = out
        return cache[key]

    return get


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Run `edge ARGS...` in-process through the real entry point; returns (exit code, stdout, stderr)."""
    from edge.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["edge", *args])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
