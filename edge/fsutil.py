"""Output directories that appear whole or not at all, and paths that cannot escape them."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from frontend.errors import EdgeError


@contextlib.contextmanager
def atomic_output_dir(target: Path) -> Iterator[Path]:
    """Yield a fresh temporary directory beside `target`; on success it replaces `target` in one rename.

    On any error the temporary directory is removed and `target` is left as it was.
    """
    target = Path(target).resolve()
    if target.exists() and not target.is_dir():
        raise EdgeError(f"{target}: exists and is not a directory; choose another -o")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            old = tmp.with_suffix(".old")
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def inside(root: Path, relative: str) -> Path:
    """`root / relative`, refusing names (from models or configs) that would land outside `root`."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise EdgeError(f"refusing to write '{relative}': it points outside the output directory {root}")
    return path


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
