"""report.html for a build: the numbers of report.json as bar charts and tables, one self-contained file.

Python computes the chart geometry; the markup (inline SVG, no scripts, no network) lives in
edge/templates/report.html.j2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).parent / "templates"
RESOURCES = ("lut", "ff", "bram36", "uram", "dsp")
BAR_WIDTH = 520  # pixels of the longest bar


def _bars(rows: list[tuple[str, float]], highlight: str | None = None) -> list[dict[str, Any]]:
    """Horizontal bars scaled to the largest value."""
    top = max((v for _, v in rows), default=0) or 1
    return [{"label": k, "value": v, "width": round(BAR_WIDTH * v / top, 1), "y": i * 18,
             "hot": k == highlight} for i, (k, v) in enumerate(rows)]


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
        "cycles": _bars([(r["name"], r["cycles"]) for r in layers], t["bottleneck"]),
        "luts": _bars([(r["name"], r["lut"]) for r in layers]),
        "brams": _bars([(r["name"], r["bram36"]) for r in layers if r["bram36"]]),
        "fifos": fifos, "sim": sim, "verification": report.get("verification"), "bar_width": BAR_WIDTH,
    }


def render_report(report: dict[str, Any]) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("report.html.j2").render(**build_context(report))


def write_report_html(report: dict[str, Any], out_dir: Path) -> Path:
    path = out_dir / "report.html"
    path.write_text(render_report(report), encoding="utf-8")
    return path
