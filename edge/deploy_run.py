"""`edge run DEPLOY --sim`: the deploy package's PYNQ driver, unchanged, on a simulated board whose DMA feeds the
cycle-level simulator (hls/deploy/sim_device.py), then its outputs compared with the golden model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from frontend.errors import EdgeError
from hls.deploy import HERE as DEPLOY_CODE

PYNQ_ENV = "EDGE_PYNQ_PYTHON"
SIM_DEVICE = DEPLOY_CODE / "sim_device.py"


def _has_pynq(python: str) -> bool:
    try:
        return subprocess.run([python, "-c", "import pynq"], capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


PYNQ_REQUIREMENTS = ("pynq==3.1.2", "pycparser<3")  # as on PYNQ 3.1 board images


def _made_by_install() -> list[Path]:
    """Where `make install` puts the board's environment: beside the environment edge runs in (.venv-pynq next to
    .venv) and at the root of the source tree edge was installed from."""
    roots = [Path(sys.prefix).parent, Path(__file__).resolve().parents[1]]
    return [r / ".venv-pynq" / "bin" / "python" for r in dict.fromkeys(roots)]


def _cache_env() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "edge" / "venv-pynq-3.1"


def _create_env(env: Path, log: Callable[[str], None]) -> str:
    """Create the board's environment on first use (a venv with pynq 3.1; about a minute, once)."""
    log(f"edge run --sim: creating the pynq 3.1 environment in {env} (once; pip install {' '.join(PYNQ_REQUIREMENTS)})"
        "...")
    tmp = env.with_name(env.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(tmp)], check=True, capture_output=True)
        subprocess.run([str(tmp / "bin" / "python"), "-m", "pip", "install", "--quiet", *PYNQ_REQUIREMENTS],
                       check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        last = (exc.stderr or "").strip().splitlines()[-1:] or ["no output"]
        raise EdgeError(f"could not create the pynq environment in {env}: {last[0][:200]}; pass --python PATH "
                        f"to a Python with pynq 3.1") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # venv scripts hold absolute paths: the interpreter link still resolves after the rename, pip is not used again
    tmp.rename(env)
    log(f"edge run --sim: pynq environment ready ({env})")
    return str(env / "bin" / "python")


def pynq_python(explicit: str | None, log: Callable[[str], None] = lambda _: None) -> str:
    """The interpreter the driver runs under: --python, $EDGE_PYNQ_PYTHON, this one if it has pynq, the environment
    `make install` made, edge's own cached one, or one created now (pynq pins numpy<2: it cannot share edge's)."""
    for candidate, source in ((explicit, "--python"), (os.environ.get(PYNQ_ENV), f"${PYNQ_ENV}")):
        if candidate:
            path = shutil.which(candidate) or candidate
            if not _has_pynq(path):
                raise EdgeError(f"{source} {candidate}: cannot `import pynq` there; install pynq 3.1 into it "
                                f"(pip install pynq==3.1.2)")
            return path
    if _has_pynq(sys.executable):
        return sys.executable
    cached = _cache_env() / "bin" / "python"
    for path in [*_made_by_install(), cached]:
        if path.exists() and _has_pynq(str(path)):
            return str(path)
    return _create_env(_cache_env(), log)


def read_settings(deploy: Path) -> dict[str, Any]:
    path = deploy / "driver" / "settings.json"
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EdgeError(f"{deploy}: no driver/settings.json; is this the deploy/ directory of an `edge build`?") \
            from None
    except json.JSONDecodeError as exc:
        raise EdgeError(f"{path}: not valid JSON ({exc})") from None
    if settings.get("schema") != "edge-deploy/1":
        raise EdgeError(f"{path}: not an edge deploy settings file (schema {settings.get('schema')!r})")
    if settings.get("dma") is None and not settings.get("uart"):
        raise EdgeError(f"{deploy}: built for {settings.get('board')} ({settings.get('shell')}); the simulated board "
                        "models the Zynq shell's AXI DMA")
    return settings


def _run_driver(interpreter: str, deploy: Path, binary: Path, driver_args: list[str]) -> tuple[dict[str, Any], str]:
    """One driver.py process on the simulated board: the simulated board's statistics and the driver's stdout."""
    with tempfile.TemporaryDirectory(prefix="edge-run-") as tmp:
        stats_file = Path(tmp) / "stats.json"
        cmd = [interpreter, str(SIM_DEVICE), str(deploy.resolve()), str(binary), str(Path(tmp) / "work"),
               str(stats_file), "--", "--bitfile", "simulated", *driver_args]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            lines = [line for line in (result.stderr or result.stdout).strip().splitlines() if line.strip()]
            raise EdgeError(f"{deploy / 'driver' / 'driver.py'} on the simulated board: "
                            f"{lines[-1] if lines else f'exit {result.returncode}'}")
        return json.loads(stats_file.read_text()), result.stdout.strip()


def _timing(stats: dict[str, Any], clock_mhz: float) -> dict[str, Any]:
    # steady state from the last batch's frame completions (the first frame also pays the pipeline's fill)
    done = stats["runs"][-1]["frame_done"] if stats["runs"] else []
    steady = (done[-1] - done[0]) / (len(done) - 1) if len(done) > 1 else float(stats["cycles"])
    return {"frames": stats["frames"], "cycles": stats["cycles"], "batches": len(stats["runs"]),
            "steady_cycles_per_frame": steady, "fps": clock_mhz * 1e6 / steady if steady else 0.0}


def run_deploy_sim(deploy: Path, input_file: Path, output_file: Path, python: str | None = None,
                   throughput: bool = False, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Run deploy/driver/driver.py on the simulated board; returns frames, cycles and simulated throughput (and,
    with `throughput`, the driver's --throughput run with its simulated cycles)."""
    from hls.simulate import compile_binary

    settings = read_settings(deploy)
    project = deploy.parent / "hls"
    if not (project / "sim.cpp").exists():
        raise EdgeError(f"{project}: no sim.cpp beside the deploy package; run `edge build` again")
    interpreter = pynq_python(python, log)
    binary = compile_binary(project, ["sim.cpp"], "sim.bin")
    clock = settings["clock_mhz"]
    stats, stdout = _run_driver(interpreter, deploy, binary,
                                ["--input", str(input_file.resolve()), "--output", str(output_file.resolve())])
    result = {**_timing(stats, clock), "clock_mhz": clock, "driver_stdout": stdout,
              "cache_flushes": stats["cache_flushes"], "cache_invalidates": stats["cache_invalidates"]}
    if throughput:
        stats, stdout = _run_driver(interpreter, deploy, binary, ["--throughput"])
        # the driver times wall-clock seconds, here the simulator's; the board's rate is the simulated cycles'
        result["throughput"] = {**_timing(stats, clock), "driver": json.loads(stdout.splitlines()[-1])}
    return result


def run_uart_sim(deploy: Path, input_file: Path, output_file: Path,
                 log: Callable[[str], None] = lambda _: None, timeout: float = 3600) -> dict[str, Any]:
    """Run deploy/driver/driver.py (pyserial) against the Verilator model of the board top, UART shell included:
    the model's serial line is a pseudo-terminal the driver opens as its port."""
    import time

    from boards import load_board
    from rtl.project import load_project
    from rtl.serial_sim import compile_board

    settings = read_settings(deploy)
    project_dir = deploy.parent / "rtl"
    if not (project_dir / "project.json").exists():
        raise EdgeError(f"{project_dir}: no RTL project beside the deploy package; run `edge build --bitfile` again")
    project = load_project(project_dir)
    board = load_board(settings["board"])
    log(f"Verilator: the {board.name} top with its UART shell (compiled once)...")
    exe = compile_board(project, board)
    with tempfile.TemporaryDirectory(prefix="edge-pty-") as tmp:
        path_file = Path(tmp) / "pty"
        sim = subprocess.Popen([str(exe), "--pty", str(path_file), str(settings["uart"]["clks_per_bit"])],
                               cwd=project_dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(600):
                if path_file.exists() and path_file.read_text().endswith("\n"):
                    break
                if sim.poll() is not None:
                    raise EdgeError(f"{exe}: the serial-line model stopped: {sim.stderr.read().strip()[:200]}")
                time.sleep(0.05)
            port = path_file.read_text().strip()
            log(f"driver.py on {port} (the model's serial line) at {settings['uart']['baud']:,} baud...")
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, str(deploy / "driver" / "driver.py"), "--port", port, "--input",
                                   str(input_file), "--output", str(output_file)], capture_output=True, text=True,
                                  timeout=timeout)
            seconds = time.perf_counter() - t0
        finally:
            sim.terminate()
            sim.wait(timeout=10)
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise EdgeError(f"{deploy / 'driver' / 'driver.py'} failed on the simulated {board.name}: {last[0][:300]}")
    frames = int(json.loads(done.stdout.strip().splitlines()[-1])["frames"])
    return {"frames": frames, "board": board.name, "port": "pseudo-terminal", "baud": settings["uart"]["baud"],
            "clks_per_bit": settings["uart"]["clks_per_bit"], "seconds": round(seconds, 2)}


def compare_with_golden(build_dir: Path, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """The driver's outputs against the build's integer model with the same host steps (must be bit-exact: same
    integers, same float affine) and against the QONNX golden model (equal up to float32 rounding of its float
    output layer, as `edge build` verifies; top-1 agreement for class scores)."""
    from edge.build import MODEL_COPY
    from fpga.execute import run_model
    from fpga.serialize import load_graph
    from fpga.verify import APPROX_KINDS, verify
    from frontend.qonnx_io import GoldenModel, load_model

    graph = load_graph(build_dir)
    ours = run_model(graph, x)
    result: dict[str, Any] = {"bit_exact_vs_integer_model": ours.shape == y.shape and bool(np.array_equal(ours, y))}
    if graph.post.top_k:
        result.update(against="integer model (top-k indices)", golden_close=result["bit_exact_vs_integer_model"])
        return result
    loaded = load_model(build_dir / MODEL_COPY)
    ref = GoldenModel(loaded).run(x)
    same_shape = ref.shape == y.shape
    close = same_shape and bool(np.isclose(y, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max(initial=1.0)).all())
    against = "QONNX golden model"
    if same_shape and not close and any(n.kind in APPROX_KINDS for n in graph.nodes):
        # Softmax/LayerNorm kernels are not bit-exact with float: the driver's integers are the integer model's
        # (checked above), and those are held to the build's bound against the golden, layer by layer
        report = verify(graph, loaded, x)
        close = result["bit_exact_vs_integer_model"] and report.passed
        against = "QONNX golden model (Softmax/LayerNorm outputs within their 1-level bound)"
    result.update(against=against, golden_close=close,
                  max_abs_diff=float(np.abs(ref.astype(np.float64) - y).max()) if same_shape else float("inf"))
    if same_shape and y.ndim == 2:
        result["top1_agreement"] = float((y.argmax(1) == ref.argmax(1)).mean())
    return result
