"""The briefing's pages and downloads: HTML (Jinja), the SVG map and chart, CSV, GeoJSON.

Everything is rendered here from a :class:`~serving.briefing.view.Briefing`;
the page needs no script, font, tile or style from anywhere else (a small
script in ``static/`` only submits the filters on change and opens an area
clicked on the map).
"""

from __future__ import annotations

import csv
import io
import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from serving.briefing.view import BANDS, NOTICE, AreaRow, Briefing

__all__ = [
    "render_briefing",
    "render_signin",
    "render_docs",
    "briefing_csv",
    "briefing_geojson",
    "map_svg",
    "history_svg",
    "static_file",
    "CSV_COLUMNS",
    "STATIC_DIR",
    "STATIC_TYPES",
]

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
CSV_COLUMNS = (
    "rank",
    "area_code",
    "area_name",
    "district",
    "target_week",
    "horizon",
    "expected_count",
    "interval_lower",
    "interval_upper",
    "p_any",
    "change_since_last_week",
    "density_per_km2",
    "flagged",
    "drivers",
)


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["count"] = lambda v: "–" if v is None else f"{v:.1f}"
    env.filters["share"] = lambda v: "–" if v is None else f"{100 * v:.0f}%"
    env.filters["signed"] = lambda v: "–" if v is None else f"{v:+.2f}"
    return env


def static_file(name: str) -> tuple[bytes, str] | None:
    """Return a packaged static file's bytes and media type, or None."""
    path = STATIC_DIR / name
    if "/" in name or path.suffix not in STATIC_TYPES or not path.is_file():
        return None
    return path.read_bytes(), STATIC_TYPES[path.suffix]


def _query(horizon: int, district: str, **extra: Any) -> str:
    params = {"horizon": horizon, **({"district": district} if district else {}), **extra}
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


def map_svg(briefing: Briefing, horizon: int, district: str, selected: str | None) -> Markup:
    """Return the map: one ``<path>`` or ``<circle>`` per area, named for screen readers."""
    rows = briefing.areas(horizon, district)
    box = briefing.views.get(district) or briefing.views[""]
    parts = [
        f'<svg id="map" class="map" viewBox="{box.view_box}" role="group" '
        f'aria-label="Map of {len(rows)} areas coloured by forecast density" '
        'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">'
    ]
    for row in rows:
        shape = briefing.shapes.get(row.area_code)
        if shape is None:
            continue
        name = escape(row.area_name)
        label = f"{name}: {row.expected_count:.1f} expected"
        css = f"area b{row.band}" + (" flagged" if row.hotspot else "")
        css += " selected" if row.area_code == selected else ""
        # flagged areas are links in the tab order; the rest open on a click (and are
        # all reachable from the list with "List every area")
        role = 'role="link" tabindex="0"' if row.hotspot else 'role="img"'
        common = f'class="{css}" data-code="{escape(row.area_code)}" {role} aria-label="{name}"'
        if shape.path:
            parts.append(f'<path {common} d="{shape.path}"><title>{label}</title></path>')
        else:
            parts.append(
                f'<circle {common} cx="{shape.cx}" cy="{shape.cy}" r="{shape.r:.1f}">'
                f"<title>{label}</title></circle>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def history_svg(points: list[tuple[str, float | None, float]], name: str) -> Markup:
    """Return a small line chart of weeks observed (solid) against forecast (dashed)."""
    if not points:
        return Markup("<p>No weekly history in this snapshot.</p>")
    width, height, pad = 520.0, 160.0, 28.0
    top = max([p[2] for p in points] + [p[1] or 0.0 for p in points] + [1.0])
    step = (width - 2 * pad) / max(len(points) - 1, 1)

    def xy(i: int, v: float) -> str:
        return f"{pad + i * step:.1f},{height - pad - (height - 2 * pad) * v / top:.1f}"

    observed = " ".join(xy(i, p[1]) for i, p in enumerate(points) if p[1] is not None)
    forecast = " ".join(xy(i, p[2]) for i, p in enumerate(points))
    label = escape(
        f"{name}: last {len(points)} weeks observed against forecast, "
        f"{points[0][0]} to {points[-1][0]}"
    )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="{label}" xmlns="http://www.w3.org/2000/svg"><title>{label}</title>'
        f'<line class="axis" x1="{pad}" y1="{height - pad}" x2="{width - pad}" '
        f'y2="{height - pad}"/>'
        f'<text x="{pad}" y="{height - 8}">{escape(points[0][0])}</text>'
        f'<text x="{width - pad}" y="{height - 8}" text-anchor="end">'
        f"{escape(points[-1][0])}</text>"
        f'<text x="4" y="{pad - 8}">{top:.1f}</text>'
        f'<text x="4" y="{height - pad}">0</text>'
        f'<polyline class="observed" points="{observed}"/>'
        f'<polyline class="forecast" points="{forecast}"/></svg>'
    )


def _frame(briefing: Briefing | None) -> dict[str, Any]:
    return {"provenance": briefing.provenance if briefing else None, "notice": NOTICE}


def render_briefing(
    briefing: Briefing, *, horizon: int | None, district: str | None, area: str | None,
    show_all: bool = False,
) -> str:  # fmt: skip
    """Return the briefing page for a horizon, a district ('' for all) and a selected area."""
    h = briefing.horizon_or_first(horizon)
    d = briefing.district_or_all(district)
    selected = briefing.by_code[h].get(area or "")
    rows = briefing.areas(h, d) if show_all else briefing.flagged(h, d)
    return (
        _environment()
        .get_template("briefing.html")
        .render(
            **_frame(briefing),
            briefing=briefing,
            horizon=h,
            district=d,
            rows=rows,
            show_all=show_all,
            n_areas=len(briefing.areas(h, d)),
            target_week=briefing.rows[h][0].target_week,
            selected=selected,
            chart=history_svg(briefing.history.get(selected.area_code, []), selected.area_name)
            if selected
            else None,
            map=map_svg(briefing, h, d, selected.area_code if selected else None),
            bands=BANDS,
            query=lambda **extra: _query(h, d, **extra),
        )
    )


def render_signin(briefing: Briefing | None, *, error: str | None = None) -> str:
    """Return the sign-in form (with a refusal message after a wrong credential)."""
    return _environment().get_template("signin.html").render(**_frame(briefing), error=error)


def render_docs() -> str:
    """Return the API's Swagger page: BentoML's packaged Swagger UI, no tracking script."""
    return _environment().get_template("docs.html").render()


def _csv_row(row: AreaRow) -> list[Any]:
    return [
        row.rank,
        row.area_code,
        row.area_name,
        row.district,
        row.target_week,
        row.horizon,
        repr(row.expected_count),
        "" if row.lower is None else repr(row.lower),
        "" if row.upper is None else repr(row.upper),
        "" if row.p_any is None else repr(row.p_any),
        "" if row.change is None else repr(row.change),
        "" if row.density is None else repr(row.density),
        "yes" if row.hotspot else "no",
        "; ".join(row.drivers),
    ]


def briefing_csv(
    briefing: Briefing, *, horizon: int | None, district: str | None, show_all: bool = False
) -> str:
    """Return the list (flagged areas, or every area) as CSV, full precision."""
    h, d = briefing.horizon_or_first(horizon), briefing.district_or_all(district)
    rows = briefing.areas(h, d) if show_all else briefing.flagged(h, d)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(_csv_row(r) for r in rows)
    return out.getvalue()


def briefing_geojson(briefing: Briefing, *, horizon: int | None, district: str | None) -> bytes:
    """Return every area of the district as GeoJSON: polygons when known, else points."""
    h, d = briefing.horizon_or_first(horizon), briefing.district_or_all(district)
    features = []
    for row in briefing.areas(h, d):
        geometry = briefing.polygons.get(row.area_code)
        if geometry is None:
            lon, lat = briefing.centroids.get(row.area_code, (None, None))
            geometry = {"type": "Point", "coordinates": [lon, lat]}
        properties = dict(zip(CSV_COLUMNS, _csv_row(row), strict=True))
        for key in ("expected_count", "interval_lower", "interval_upper", "p_any"):
            properties[key] = None if properties[key] == "" else float(properties[key])
        for key in ("change_since_last_week", "density_per_km2"):
            properties[key] = None if properties[key] == "" else float(properties[key])
        properties["drivers"] = row.drivers
        features.append({"type": "Feature", "geometry": geometry, "properties": properties})
    body = {
        "type": "FeatureCollection",
        "properties": {
            "model": briefing.provenance.model_name,
            "version": briefing.provenance.model_version,
            "data_week": briefing.provenance.data_week,
            "horizon": h,
            "notice": NOTICE,
        },
        "features": features,
    }
    return json.dumps(body).encode()
