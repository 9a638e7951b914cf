"""What the briefing shows, prepared once from the served bundle's snapshot.

:class:`Briefing` holds, per horizon, one row per area (forecast, interval,
P(at least one), change since last week's forecast, density, drivers in
words), each area's last weeks observed against forecast, and its shape on
the map. Requests filter and slice these; nothing is computed per request
beyond that.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from governance.provenance import TAG_STATUS
from serving.briefing.inputs import (
    AREAS_FILE,
    BOUNDARIES_FILE,
    BRIEFING_META_FILE,
    HISTORY_FILE,
    PREVIOUS_FILE,
)
from serving.briefing.mapsvg import Box, Shape, bounding_box, project_shapes
from serving.snapshot import N_DRIVERS, Snapshot

__all__ = ["Briefing", "Provenance", "AreaRow", "BANDS", "NOTICE", "band_of"]

NOTICE = (
    "Forecasts are about areas, never people. They are one input to partnership "
    "planning, never the sole basis for enforcement or stop and search."
)
#: density bands, lowest first: (label, fill colour); fills of at least 3:1
#: contrast against the page, text never drawn on them
BANDS = (
    ("lowest 50%", "#e8eef3"),
    ("50-75%", "#b9d3e6"),
    ("75-90%", "#6fa8d3"),
    ("90-95%", "#e3873b"),
    ("top 5%", "#a52a18"),
)
_BAND_EDGES = (50.0, 75.0, 90.0, 95.0)


def band_of(percentile: float) -> int:
    """Return the band index (0-4) of a density percentile (0-100)."""
    return sum(percentile > edge for edge in _BAND_EDGES)


def _num(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


@dataclass(frozen=True)
class Provenance:
    """Who and what stands behind the page (shown on every page)."""

    model_name: str
    model_version: str
    approved: bool
    approved_by: list[str]
    approved_at: str
    data_week: str
    card_url: str = "/model_card.html"
    #: what the expected counts are, in words (the snapshot's ``served_method``)
    served: str = ""


@dataclass(frozen=True)
class AreaRow:
    """One area at one horizon, as the list, the map, the CSV and the detail show it."""

    area_code: str
    area_name: str
    district: str
    target_week: str
    horizon: int
    expected_count: float
    lower: float | None
    upper: float | None
    p_any: float | None
    rank: int
    hotspot: bool
    change: float | None
    density: float | None
    density_percentile: float
    band: int
    drivers: list[str] = field(default_factory=list)


def provenance(approval: dict[str, Any], snapshot: Snapshot) -> Provenance:
    """Return the page's provenance from the bundle's approval record and snapshot."""
    tags = approval.get("tags", {})
    reviewers = [r for r in str(tags.get("harmcast.reviewers", "")).split(",") if r]
    return Provenance(
        model_name=str(approval["name"]),
        model_version=str(approval["version"]),
        approved=tags.get(TAG_STATUS) == "approved",
        approved_by=reviewers,
        approved_at=str(tags.get("harmcast.decided_at", "")),
        data_week=snapshot.meta.origin_week,
        served=_served_words(snapshot.meta.served_method),
    )


#: the snapshot's ``served_method`` in words; the model's own forecast says nothing extra
_SERVED_WORDS = {
    "stacked": "the model combined with the analysts' fitted baselines",
    "poisson_glm": "a Poisson regression baseline, which did better than the model in the backtest",
    "hawkes": "a self-exciting (Hawkes) baseline, which did better than the model in the backtest",
    "prospective_hotspot": "prospective hotspot mapping, which did better than the model in the "
    "backtest",
}


def _served_words(method: str) -> str:
    return _SERVED_WORDS.get(method, "")


def _read(directory: Path, name: str) -> pd.DataFrame | None:
    path = directory / name
    return pd.read_parquet(path) if path.is_file() else None


def _belongs(directory: Path, snapshot: Snapshot) -> bool:
    # history and last week's forecasts built for another snapshot are not shown
    path = directory / BRIEFING_META_FILE
    if not path.is_file():
        return False
    return json.loads(path.read_text()).get("snapshot_parquet_sha256") == snapshot.meta.sha256


def _polygons(directory: Path) -> dict[str, dict[str, Any]]:
    path = directory / BOUNDARIES_FILE
    if not path.is_file():
        return {}
    features = json.loads(path.read_text()).get("features", [])
    return {f["properties"]["area_code"]: f["geometry"] for f in features}


def _drivers(row: dict[str, Any]) -> list[str]:
    words = []
    for i in range(1, N_DRIVERS + 1):
        if f"driver_{i}_description" in row:
            direction = "raises" if row[f"driver_{i}_direction"] == "raises" else "lowers"
            words.append(f"{row[f'driver_{i}_description']} {direction} the forecast")
    return words


def _rows(frame: pd.DataFrame, previous: pd.DataFrame | None, km2: pd.DataFrame | None):
    if previous is not None:
        frame = frame.merge(previous, on=["area_code", "horizon"], how="left")
    if km2 is not None:
        frame = frame.merge(km2, on="area_code", how="left")
    density = frame["mu"] / frame["area_km2"] if "area_km2" in frame else frame["mu"]
    frame = frame.assign(
        density=density,
        density_percentile=density.groupby(frame["horizon"]).rank(pct=True) * 100.0,
    )
    rows: dict[int, list[AreaRow]] = {}
    for record in frame.sort_values(["horizon", "rank"]).to_dict("records"):
        previous_mu = _num(record.get("previous_mu"))
        row = AreaRow(
            area_code=str(record["area_code"]),
            area_name=str(record["area_name"]),
            district=str(record["district"]),
            target_week=pd.Timestamp(record["target_week"]).date().isoformat(),
            horizon=int(record["horizon"]),
            expected_count=float(record["mu"]),
            lower=_num(record["q_lo"]),
            upper=_num(record["q_hi"]),
            p_any=_num(record["p_any"]),
            rank=int(record["rank"]),
            hotspot=bool(record["hotspot"]),
            change=None if previous_mu is None else float(record["mu"]) - previous_mu,
            density=_num(record["density"]) if "area_km2" in frame else None,
            density_percentile=float(record["density_percentile"]),
            band=band_of(float(record["density_percentile"])),
            drivers=_drivers(record),
        )
        rows.setdefault(row.horizon, []).append(row)
    return rows


class Briefing:
    """The briefing's data for every horizon of one snapshot.

    Parameters
    ----------
    snapshot : the served snapshot.
    snapshot_dir : its directory (the briefing's extra files, when present).
    approval : the bundle's approval record (name, version, tags).
    """

    def __init__(self, snapshot: Snapshot, snapshot_dir: Path, approval: dict[str, Any]) -> None:
        self.provenance = provenance(approval, snapshot)
        frame = snapshot.frame
        current = _belongs(snapshot_dir, snapshot)
        self.rows = _rows(
            frame,
            _read(snapshot_dir, PREVIOUS_FILE) if current else None,
            _read(snapshot_dir, AREAS_FILE),
        )
        self.horizons = sorted(self.rows)
        self.by_code = {h: {r.area_code: r for r in rows} for h, rows in self.rows.items()}
        first = self.rows[self.horizons[0]]
        self.districts = sorted({r.district for r in first})
        areas = frame.drop_duplicates("area_code")
        centroids = {
            str(r["area_code"]): (_num(r["longitude"]), _num(r["latitude"]))
            for r in areas.to_dict("records")
        }
        polygons = _polygons(snapshot_dir)
        self.has_polygons = bool(polygons)
        self.polygons = polygons
        self.centroids = centroids
        self.shapes: dict[str, Shape] = project_shapes(centroids, polygons)
        self.views: dict[str, Box] = {"": bounding_box(s.box for s in self.shapes.values())}
        for district in self.districts:
            codes = [r.area_code for r in first if r.district == district]
            self.views[district] = bounding_box(
                self.shapes[c].box for c in codes if c in self.shapes
            )
        self.history = _history(_read(snapshot_dir, HISTORY_FILE) if current else None)

    def horizon_or_first(self, horizon: int | None) -> int:
        """Return ``horizon`` when the snapshot holds it, else the first horizon."""
        return horizon if horizon in self.rows else self.horizons[0]

    def district_or_all(self, district: str | None) -> str:
        """Return ``district`` when it exists, else '' (every district)."""
        return district if district in self.districts else ""

    def areas(self, horizon: int, district: str) -> list[AreaRow]:
        """Return every area of ``district`` ('' for all) at ``horizon``, by rank."""
        rows = self.rows[horizon]
        return [r for r in rows if r.district == district] if district else rows

    def flagged(self, horizon: int, district: str) -> list[AreaRow]:
        """Return the flagged areas of ``district`` at ``horizon``, by rank."""
        return [r for r in self.areas(horizon, district) if r.hotspot]


def _history(frame: pd.DataFrame | None) -> dict[str, list[tuple[str, float | None, float]]]:
    if frame is None:
        return {}
    history: dict[str, list[tuple[str, float | None, float]]] = {}
    for record in frame.sort_values(["area_code", "week"]).to_dict("records"):
        history.setdefault(str(record["area_code"]), []).append(
            (
                pd.Timestamp(record["week"]).date().isoformat(),
                _num(record["observed"]),
                float(record["forecast"]),
            )
        )
    return history
