"""HTML reports for builds, exports and benchmarks: the JSON numbers as charts and tables, one self-contained file.

Python computes the chart geometry; the markup (inline SVG, no scripts, no network) lives in
edge/templates/report.html.j2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).parent / "templates"
RESOURCES = ("lut", "ff", "bram36", "uram", "dsp")
BAR_WIDTH = 520  # pixels of the longest bar


def bars(rows: list[tuple[str, float]], highlight: str | None = None, fmt: str = "{:,.1f}") -> list[dict[str, Any]]:
    """Horizontal bars scaled to the largest value, each with its label text."""
    top = max((v for _, v in rows), default=0) or 1
    return [{"label": k, "value": v, "text": fmt.format(v), "width": round(BAR_WIDTH * v / top, 1), "y": i * 18,
             "hot": k == highlight} for i, (k, v) in enumerate(rows)]


def histogram(samples_ms: list[float], bins: int = 24) -> list[dict[str, Any]]:
    """Vertical bars of a latency histogram: x position, height and the bin's range."""
    import numpy as np

    counts, edges = np.histogram(np.asarray(samples_ms, dtype=np.float64), bins=bins)
    top = int(counts.max()) or 1
    return [{"x": i * 22, "h": round(160 * int(c) / top, 1), "count": int(c), "lo": float(edges[i]),
             "hi": float(edges[i + 1])} for i, c in enumerate(counts)]


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def build_context(report: dict[str, Any]) -> dict[str, Any]:
    """Everything the template draws, from a build's report.json."""
    t = report["totals"]
    cap = report["utilisation_cap"]
    util = [{"name": k.upper(), "used": t["resources"][k], "fraction": t["utilisation"][k],
             "width": round(BAR_WIDTH * min(t["utilisation"][k], 1.0), 1), "over": t["utilisation"][k] > cap + 1e-9,
             "y": i * 22} for i, k in enumerate(RESOURCES)]
    layers = report["layers"]
    sim = report.get("simulation")
    occupancy = (sim or {}).get("cycle_sim", {}).get("fifos", {})
    fifos = [{**f, "peak": occupancy.get(f["stream"], {}).get("peak")} for f in report.get("fifos", [])]
    return {
        "r": report, "t": t, "cap": cap, "cap_x": round(BAR_WIDTH * cap, 1), "util": util,
        "cycles": bars([(r["name"], r["cycles"]) for r in layers], t["bottleneck"], "{:,.0f}"),
        "luts": bars([(r["name"], r["lut"]) for r in layers], fmt="{:,.0f}"),
        "brams": bars([(r["name"], r["bram36"]) for r in layers if r["bram36"]]),
        "fifos": fifos, "sim": sim, "verification": report.get("verification"), "bar_width": BAR_WIDTH,
        "rtl": report.get("rtl"), "synth": report.get("synth"),
    }


def render_report(report: dict[str, Any]) -> str:
    return _env().get_template("report.html.j2").render(**build_context(report))


def write_report_html(report: dict[str, Any], out_dir: Path) -> Path:
    """A build's report.html."""
    path = out_dir / "report.html"
    path.write_text(render_report(report), encoding="utf-8")
    return path


def write_export_html(report: dict[str, Any], out_dir: Path) -> Path:
    """An export's report.html: the verification against the golden model and, with --per-layer, each tensor's
    largest difference in LSB as bars."""
    layers = report.get("per_layer") or []
    ctx = {"r": report, "v": report.get("verification", {}), "bar_width": BAR_WIDTH,
           "lsb": bars([(r["tensor"], r["max_diff_lsb"]) for r in layers], fmt="{:.2f}"), "layers": layers}
    path = out_dir / "report.html"
    path.write_text(_env().get_template("export.html.j2").render(**ctx), encoding="utf-8")
    return path


def write_bench_html(result: dict[str, Any], path: Path) -> Path:
    """`edge bench --html`: the latency table and a histogram of every timed run."""
    ctx = {"r": result, "hist": histogram(result["samples_ms"]), "lat": result["latency_ms"]}
    path.write_text(_env().get_template("bench.html.j2").render(**ctx), encoding="utf-8")
    return path


def write_pareto_svg(records: list[dict[str, Any]], front: list[dict[str, Any]], baseline: dict[str, Any],
                     chosen: dict[str, Any], path: Path) -> Path:
    """`edge compress`: accuracy against FPS (log scale) for every fine-tuned candidate, the Pareto front joined,
    marker area by LUT; baseline and chosen model labelled."""
    import math

    w, h, pad = 640, 400, 60
    fps = [max(r["fps"], 1e-9) for r in records]
    acc = [r["accuracy"] for r in records]
    lo_f, hi_f = math.log10(min(fps)), math.log10(max(fps))
    lo_a, hi_a = min(acc), max(acc)
    span_f, span_a = (hi_f - lo_f) or 1.0, (hi_a - lo_a) or 0.01
    lut_max = max(r["resources"]["lut"] for r in records) or 1

    def xy(r: dict[str, Any]) -> tuple[float, float]:
        x = pad + (math.log10(max(r["fps"], 1e-9)) - lo_f) / span_f * (w - 2 * pad)
        y = h - pad - (r["accuracy"] - lo_a) / span_a * (h - 2 * pad)
        return round(x, 1), round(y, 1)

    points = [{"x": xy(r)[0], "y": xy(r)[1], "r": round(3 + 9 * r["resources"]["lut"] / lut_max, 1),
               "name": r["name"], "front": any(r is f for f in front),
               "label": "baseline" if r is baseline else ("chosen" if r["name"] == chosen["name"] else "")}
              for r in records]
    line = " ".join(f"{p['x']},{p['y']}" for p in sorted((p for p in points if p["front"]), key=lambda p: p["x"]))
    ctx = {"w": w, "h": h, "pad": pad, "points": points, "line": line,
           "fps_range": (10**lo_f, 10**hi_f), "acc_range": (lo_a, hi_a)}
    path.write_text(_env().get_template("pareto.svg.j2").render(**ctx), encoding="utf-8")
    return path
