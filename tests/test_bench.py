"""`edge bench` and the standalone device script: one JSON schema, real runtimes, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"schema", "model", "runtime", "runtime_version", "threads", "warmup", "runs", "input", "init_ms",
        "latency_ms", "throughput_per_s", "samples_ms", "peak_rss_mb", "host"}


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    from edge.cli import bundled_model_path
    from edge.export.targets import export
    from frontend.qonnx_io import load_model

    base = tmp_path_factory.mktemp("bench")
    loaded = load_model(bundled_model_path())
    return {t: Path(export(loaded, t, base / t)["path"]) for t in ("tflite", "openvino", "onnx")}


@pytest.mark.parametrize("target,runtime", [("tflite", "litert"), ("openvino", "openvino"), ("onnx", "onnxruntime")])
def test_bench_each_runtime(exports, run_cli, target, runtime):
    code, out, err = run_cli("bench", str(exports[target].parent), "--runs", "30", "--warmup", "3", "--json")
    assert code == 0, err
    r = json.loads(out)
    assert set(r) == KEYS and r["schema"] == "edge-bench/1" and r["runtime"] == runtime
    lat = r["latency_ms"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert r["runs"] == 30 and r["throughput_per_s"] > 0 and r["peak_rss_mb"] > 0 and r["host"]["cores"] >= 1
    assert len(r["samples_ms"]) == 30 and min(r["samples_ms"]) == pytest.approx(lat["min"], abs=1e-3)


def test_bench_html_histogram(run_cli, exports, tmp_path):
    page = tmp_path / "bench.html"
    code, out, err = run_cli("bench", str(exports["tflite"]), "--runs", "40", "--warmup", "2", "--html", str(page))
    assert code == 0, err
    html = page.read_text(encoding="utf-8")
    assert html.count("<rect") == 24 and "<script" not in html and "latency p50" not in html  # bars, no table dump
    assert sum(int(t.split(": ")[1].split("<")[0]) for t in html.split("<title>")[2:]) == 40  # counts add up
    assert f"wrote {page}" in out


def test_standalone_script_same_schema(exports, tmp_path):
    script = ROOT / "scripts" / "bench_device.py"
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, str(script), str(exports["tflite"]), "--runs", "20", "--json", str(out)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "latency p50" in proc.stdout
    r = json.loads(out.read_text())
    assert set(r) == KEYS and r["runtime"] == "litert" and r["input"]["shape"] == [1, 64]
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "nope.tflite")], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "no such model file" in proc.stderr


def test_bench_errors(run_cli, tmp_path, exports):
    code, _, err = run_cli("bench", str(tmp_path / "missing.tflite"))
    assert code == 2 and "no such model file" in err
    code, _, err = run_cli("bench", str(tmp_path))
    assert code == 2 and "without export.json" in err
    from edge.cli import bundled_model_path

    code, _, err = run_cli("bench", str(bundled_model_path()))
    assert code == 2 and "must be exported first" in err and "Traceback" not in err
    code, _, err = run_cli("bench", str(exports["tflite"]), "--runs", "0")
    assert code == 2 and "--runs" in err
