"""A user's own PyTorch model: `FILE.py:FACTORY` (their code, run only because they named it) and state dicts."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from frontend.errors import EdgeError


def factory_module(spec: str) -> tuple[ModuleType, object]:
    """Import FILE.py of `FILE.py:FACTORY` and return the module and the factory (a one-line error otherwise)."""
    path, _, name = spec.rpartition(":")
    file = Path(path)
    if not path or not name:
        raise EdgeError(f"{spec}: expected FILE.py:FACTORY (a Python file and the function that builds the model)")
    if not file.is_file():
        raise EdgeError(f"{file}: no such model file (--model FILE.py:FACTORY)")
    module_spec = importlib.util.spec_from_file_location(f"edge_user_model_{abs(hash(str(file.resolve())))}", file)
    if module_spec is None or module_spec.loader is None:
        raise EdgeError(f"{file}: not a Python file (--model FILE.py:FACTORY)")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's file: report, do not crash
        raise EdgeError(f"{file}: importing it failed: {type(exc).__name__}: {exc}") from None
    if not callable(getattr(module, name, None)):
        raise EdgeError(f"{file}: defines no callable {name!r} (--model FILE.py:FACTORY)")
    return module, getattr(module, name)


def call_factory(spec: str) -> nn.Module:
    """The module FACTORY() returns (a one-line error if it raises or returns something else)."""
    _, factory = factory_module(spec)
    try:
        model = factory()
    except Exception as exc:  # noqa: BLE001
        raise EdgeError(f"{spec}: the factory raised {type(exc).__name__}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise EdgeError(f"{spec}: the factory returned {type(model).__name__}, not a torch.nn.Module")
    return model


def load_state(model: nn.Module, path: Path | str, what: str) -> nn.Module:
    """Load a state dict (or a checkpoint dict holding one under 'state_dict' / 'model') into `model`."""
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise EdgeError(f"{path}: no such {what}") from None
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's input
        raise EdgeError(f"{path}: not a PyTorch state dict ({type(exc).__name__})") from None
    if isinstance(state, dict) and not any(isinstance(v, torch.Tensor) for v in state.values()):
        state = state.get("state_dict") or state.get("model") or state
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise EdgeError(f"{path}: does not match the model: {first}") from None
    return model
