"""Shared fixtures: the digits dataset and models trained for real (few epochs) once per test session, shared by
the session's pytest-xdist workers through a locked directory."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

from edge.data import Dataset, load_digits_dataset
from edge.train import TrainConfig, train
from edge.zoo import ZOO

TEST_EPOCHS = 15


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`make test` runs two workers on two cores) each worker computes on one thread: two
    workers with a two-thread pool each would spin against one another and run slower than one process."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    import onnxruntime as ort
    import torch

    torch.set_num_threads(1)
    init = ort.InferenceSession.__init__

    def one_thread(self, path_or_bytes, sess_options=None, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        options = sess_options if sess_options is not None else ort.SessionOptions()
        if options.intra_op_num_threads == 0:
            options.intra_op_num_threads = 1
        if options.inter_op_num_threads == 0:
            options.inter_op_num_threads = 1
        init(self, path_or_bytes, options, *args, **kwargs)

    ort.InferenceSession.__init__ = one_thread


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_digits_dataset()


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, digits: Dataset) -> Callable[..., Path]:
    """Train a zoo model on digits once per (model, wbits, abits, epochs) and return its output directory. Under
    pytest-xdist the workers share one directory (the session's base temp) and a lock per model, so each model is
    trained once per session, not once per worker."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "trained"
    root.mkdir(exist_ok=True)

    def get(model: str, wbits: int, abits: int, epochs: int = TEST_EPOCHS) -> Path:
        name = f"{model}_w{wbits}a{abits}_e{epochs}"
        out = root / name / "run"
        with FileLock(str(root / f"{name}.lock")):
            if not out.is_dir():  # train writes into a staging directory and renames it: a directory is whole
                lr = ZOO[model].lr if model in ZOO else 0.01  # the zoo's own learning rate (a transformer needs less)
                cfg = TrainConfig(model=model, wbits=wbits, abits=abits, epochs=epochs, lr=lr, float_baseline=False)
                train(cfg, digits, out, progress=False)
        return out

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
