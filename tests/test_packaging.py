"""A wheel built from the tree holds every file the packages read at run time (templates, kernels, profiles, the
bundled model), not only the Python modules: `make install` is editable and would never notice."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("edge", "fpga", "hls", "boards")


def test_wheel_holds_every_package_file(tmp_path: Path) -> None:
    # built from a copy of the tracked files: an in-tree build/ left by an earlier build would hide a missing entry
    src = tmp_path / "src"
    everything = subprocess.run(["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    for rel in everything.split():
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", str(src),
                    "-w", str(tmp_path / "dist")], check=True, capture_output=True, cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("edge_toolchain-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(["git", "ls-files", *PACKAGES], cwd=ROOT, check=True, capture_output=True,
                             text=True).stdout.split()
    data = [f for f in tracked if not f.endswith(".py")]
    assert len(data) > 30  # templates, kernel headers, board profiles, the bundled model
    missing = [f for f in data if f not in names]
    assert not missing, f"not packaged: {missing}"
    assert all(f in names for f in tracked if f.endswith(".py"))
