"""Find, load and validate board profiles: bundled ones by name, custom ones from a YAML file."""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import os
import platform
from functools import cache
from importlib import resources
from pathlib import Path

import yaml

from boards.schema import Board, BoardSchemaError, EdgeDevice, parse_board
from frontend.errors import EdgeError

HOST_PROFILE = "x86-host"


class BoardNotFound(EdgeError):
    """No bundled profile has that name and no file exists at that path."""


def _profile_dir() -> resources.abc.Traversable:
    return resources.files("boards") / "profiles"


def _parse_yaml(text: str, where: str) -> Board:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise BoardSchemaError(f"{where}:{line} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return parse_board(data, where)


@cache
def _bundled() -> dict[str, Board]:
    boards: dict[str, Board] = {}
    for entry in sorted(_profile_dir().iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".yaml"):
            continue
        board = _parse_yaml(entry.read_text(encoding="utf-8"), f"boards/profiles/{entry.name}")
        if board.name != entry.name.removesuffix(".yaml"):
            raise BoardSchemaError(f"boards/profiles/{entry.name}: name '{board.name}' must match the file name")
        boards[board.name] = board
    return boards


def list_boards() -> list[Board]:
    """All bundled profiles, FPGA boards first, each group sorted by name (the host profile detected)."""
    return [load_board(b.name) for b in sorted(_bundled().values(), key=lambda b: (b.kind != "fpga", b.name))]


def load_board_file(path: Path) -> Board:
    """Load a custom profile from a YAML file, with the same checks as the bundled ones."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BoardNotFound(f"{path}: cannot read board file ({exc.strerror})") from None
    return _parse_yaml(text, str(path))


def load_board(name_or_path: str) -> Board:
    """A bundled profile by name, or a custom one when the argument names a .yaml/.yml file."""
    if name_or_path.endswith((".yaml", ".yml")) or os.sep in name_or_path:
        return load_board_file(Path(name_or_path))
    boards = _bundled()
    if name_or_path not in boards:
        close = difflib.get_close_matches(name_or_path, list(boards), n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise BoardNotFound(
            f"unknown board '{name_or_path}'{hint} (`edge boards list` shows all; a path to a .yaml loads a custom one)"
        )
    board = boards[name_or_path]
    if board.name == HOST_PROFILE and isinstance(board, EdgeDevice):
        return detect_host(board)
    return board


def detect_host(profile: EdgeDevice) -> EdgeDevice:
    """Fill the generic host profile with what this machine reports (cores, ISA, CPU model, clock)."""
    model, ghz = profile.cpu_model, profile.cpu_clock_ghz
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        info = ""
    for line in info.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model == profile.cpu_model:
            model = value.strip()
        elif key == "cpu MHz" and ghz == profile.cpu_clock_ghz:
            with contextlib.suppress(ValueError):
                ghz = round(float(value) / 1000.0, 2)
    return dataclasses.replace(
        profile,
        cpu_cores=os.cpu_count() or profile.cpu_cores,
        cpu_isa=platform.machine() or profile.cpu_isa,
        cpu_model=model,
        cpu_clock_ghz=ghz,
    )
