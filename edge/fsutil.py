"""Output directories that appear whole or not at all, and paths that cannot escape them."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from frontend.errors import EdgeError

HELD = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def held_signals() -> Iterator[list[int]]:
    """Publish outputs with SIGINT and SIGTERM held back: a signal arriving meanwhile is recorded (in the yielded
    list) instead of interrupting, and dropped once the outputs are in place, so a command that was interrupted
    left the earlier outputs and one that published them finished. The Python handlers are swapped, not only the
    thread's mask: another thread (OpenMP's, a runtime's) may take the signal and run the main thread's handler."""
    got: list[int] = []
    try:
        saved = {s: signal.signal(s, lambda signum, _frame: got.append(signum)) for s in HELD}
    except ValueError:  # not the main thread: nothing can interrupt this one with a handler
        saved = {}
    signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
    try:
        yield got
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD)  # a signal pending here reaches the recorder
        for s, handler in saved.items():
            signal.signal(s, handler)


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
        with held_signals():
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


@contextlib.contextmanager
def atomic_files(directory: Path) -> Iterator[Path]:
    """Yield a staging directory inside `directory`; on success every file in it replaces its namesake in `directory`
    with SIGINT and SIGTERM held back, so an interrupted run leaves the earlier set of files or the new set, never a
    mix (for outputs that share their directory with state kept between runs, as `edge compress`'s do)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob(".staged.*.tmp"):  # left by a run killed outright (SIGKILL)
        shutil.rmtree(old, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=".staged.", suffix=".tmp", dir=directory))
    try:
        yield tmp
        with held_signals():
            for f in sorted(tmp.iterdir()):
                os.replace(f, directory / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: Path, data: Any) -> None:
    """Write `data` as JSON in one rename: a reader (or a resumed run) never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
