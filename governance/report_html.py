"""A self-contained HTML page of a gate report (plots embedded as base64 PNG)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

if TYPE_CHECKING:
    from governance.gate import GateReport

__all__ = ["render_gate_html", "TEMPLATE"]

TEMPLATE = Path(__file__).with_name("templates") / "gate_report.html.j2"


def render_gate_html(report: GateReport, out_dir: Path) -> str:
    """Render ``report`` with its plots (files under ``out_dir``) inlined."""
    images = {}
    for name, rel in report.plots.items():
        path = Path(out_dir) / rel
        if path.is_file():
            images[name] = base64.b64encode(path.read_bytes()).decode("ascii")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE.parent),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["num"] = lambda v: "" if v is None else f"{v:.3g}"
    gated = [c for c in report.checks if c.gated]
    return env.get_template(TEMPLATE.name).render(
        report=report,
        images=images,
        failed=[c for c in gated if not c.passed],
        gated=gated,
        reported=[c for c in report.checks if not c.gated],
    )
