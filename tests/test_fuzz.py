"""Malformed models never crash the tools: every mutation of a valid model (bytes, nodes, op types, initializers,
attributes, shapes) either builds and verifies, or exits 2 with one line on stderr."""

from __future__ import annotations

import onnx
import pytest

from edge.cli import bundled_model_path
from tests.fuzz_models import mutations


def outcome(run_cli, *args: str) -> tuple[int, list[str]]:
    code, _, err = run_cli(*args)
    return code, [line for line in err.splitlines() if line.strip()]


def check(run_cli, tmp_path, label: str, data: bytes, i: int, commands: tuple[str, ...]) -> list[str]:
    """The problems of one mutated model: anything but success or one line with exit 2."""
    path = tmp_path / f"m{i}.onnx"
    path.write_bytes(data)
    problems = []
    for command in commands:
        out = tmp_path / f"{command}{i}"
        args = {"inspect": ("inspect", str(path), "--json"),
                "build": ("build", "--board", "pynq-z2", str(path), "-o", str(out), "--no-sim", "--json"),
                "export": ("export", str(path), "--target", "onnx", "-o", str(out), "--json")}[command]
        code, lines = outcome(run_cli, *args)
        one_line = code == 2 and len(lines) == 1 and lines[0].startswith("error: ")
        if not (code == 0 or one_line):
            problems.append(f"{label}: edge {command} exit {code}: {' | '.join(lines)[:300]}")
        if code != 0 and out.exists():
            problems.append(f"{label}: edge {command} failed but left {out}")
    return problems


def fuzz(run_cli, tmp_path, model: bytes, seeds: range, commands: tuple[str, ...]) -> None:
    problems: list[str] = []
    cases = 0
    for seed in seeds:
        for label, data in mutations(onnx.load_from_string(model), seed):
            problems += check(run_cli, tmp_path, f"seed {seed}: {label}", data, cases, commands)
            cases += 1
    assert cases >= 60 * len(seeds)
    assert not problems, "\n".join(problems)


def test_fuzz_bundled_model(run_cli, tmp_path):
    fuzz(run_cli, tmp_path, bundled_model_path().read_bytes(), range(3), ("inspect", "build"))


def test_fuzz_export(run_cli, tmp_path):
    fuzz(run_cli, tmp_path, bundled_model_path().read_bytes(), range(4, 5), ("export",))


@pytest.mark.parametrize("arch", ["cnv", "tfc1"])
def test_fuzz_conv_and_binary_models(run_cli, tmp_path, trained, arch):
    """A CNN (padding, sliding windows, pooling) and a binary MLP (BipolarQuant, XNOR)."""
    model = trained("cnv", 2, 2) if arch == "cnv" else trained("tfc", 1, 1)
    fuzz(run_cli, tmp_path, (model / "model.onnx").read_bytes(), range(1), ("build",))


def test_one_line_on_the_real_stderr(tmp_path):
    """In a separate process, so that native libraries' own logging to file descriptor 2 would show too."""
    import subprocess
    import sys

    proto = onnx.load(str(bundled_model_path()))
    proto.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 3  # declared shape disagrees with the graph
    path = tmp_path / "bad.onnx"
    onnx.save(proto, str(path))
    run = subprocess.run([sys.executable, "-m", "edge.cli", "build", "--board", "pynq-z2", str(path), "-o",
                          str(tmp_path / "b"), "--no-sim"], capture_output=True, text=True, timeout=300)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 2 and len(lines) == 1 and "declared" in lines[0], run.stderr
    assert not (tmp_path / "b").exists()
