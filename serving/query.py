"""Answering forecast requests from a snapshot (lookups on prebuilt rows).

:class:`ForecastIndex` turns the snapshot frame into plain dicts once, at
service start, so that a request is a dictionary lookup per area.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from serving.schemas import (
    MSG_HORIZON_OUTSIDE,
    MSG_UNKNOWN_AREAS,
    MSG_WEEK_HORIZON,
    MSG_WEEK_OUTSIDE,
    ForecastRequest,
    RequestError,
    parse_week,
)
from serving.snapshot import BIAS_COLUMN, CONTRIB_PREFIX, N_DRIVERS, Snapshot

__all__ = ["ForecastIndex", "MAX_LISTED_UNKNOWN"]

MAX_LISTED_UNKNOWN = 50


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class _Horizon:
    target_week: str
    order: list[str]
    rows: dict[str, dict[str, Any]]
    explained: dict[str, dict[str, Any]]
    rows_json: dict[str, bytes]
    explained_json: dict[str, bytes]


def _base_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "area_code": row["area_code"],
        "area_name": row["area_name"],
        "district": row["district"],
        "expected_count": _finite(row["mu"]),
        "interval": {"lower": _finite(row["q_lo"]), "upper": _finite(row["q_hi"])},
        "p_any": _finite(row["p_any"]),
        "rank": int(row["rank"]),
        "percentile": _finite(row["percentile"]),
        "hotspot": bool(row["hotspot"]),
    }


def _explanation(row: dict[str, Any], features: tuple[str, ...]) -> dict[str, Any]:
    drivers = [
        {
            "feature": row[f"driver_{i}_feature"],
            "description": row[f"driver_{i}_description"],
            "direction": row[f"driver_{i}_direction"],
            "contribution": float(row[f"driver_{i}_contribution"]),
            "text": f"{row[f'driver_{i}_description']} {row[f'driver_{i}_direction']} the forecast",
        }
        for i in range(1, N_DRIVERS + 1)
        if f"driver_{i}_feature" in row
    ]
    return {
        "drivers": drivers,
        "bias": float(row[BIAS_COLUMN]),
        "contributions": {name: float(row[CONTRIB_PREFIX + name]) for name in features},
    }


class ForecastIndex:
    """Prebuilt answers for every horizon of one snapshot."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.meta = snapshot.meta
        self.origin = dt.date.fromisoformat(snapshot.meta.origin_week)
        self.horizons: dict[int, _Horizon] = {}
        frame = snapshot.frame.sort_values(["horizon", "rank"])
        for horizon, part in frame.groupby("horizon", sort=True):
            records = part.to_dict("records")
            rows = {r["area_code"]: _base_row(r) for r in records}
            explained = {
                r["area_code"]: _explanation(r, snapshot.meta.feature_names) for r in records
            }
            self.horizons[int(horizon)] = _Horizon(
                target_week=pd.Timestamp(part["target_week"].iloc[0]).date().isoformat(),
                order=[r["area_code"] for r in records],
                rows=rows,
                explained=explained,
                # serialised once: a whole-city answer is then a join, not a dump
                rows_json={c: json.dumps(row).encode() for c, row in rows.items()},
                explained_json={c: json.dumps({**rows[c], **explained[c]}).encode() for c in rows},
            )
        first = self.horizons[min(self.horizons)]
        areas = frame.drop_duplicates("area_code").sort_values("area_code")
        self.areas = [
            {"area_code": r["area_code"], "area_name": r["area_name"], "district": r["district"]}
            for r in areas.to_dict("records")
        ]
        self.centroids = {
            r["area_code"]: (_finite(r["longitude"]), _finite(r["latitude"]))
            for r in areas.to_dict("records")
        }
        self.known = set(first.order)

    def _resolve_horizon(self, week: str | None, horizon: int | None) -> int:
        if week is None:
            chosen = horizon or 1
            if chosen not in self.horizons:
                raise RequestError(
                    MSG_HORIZON_OUTSIDE.format(horizon=chosen, horizons=sorted(self.horizons))
                )
            return chosen
        target = parse_week(week)
        weeks_ahead = (target - self.origin).days // 7
        if weeks_ahead not in self.horizons:
            first = self.origin + dt.timedelta(weeks=min(self.horizons))
            last = self.origin + dt.timedelta(weeks=max(self.horizons))
            raise RequestError(
                MSG_WEEK_OUTSIDE.format(week=week, first=first, last=last, origin=self.origin)
            )
        if horizon is not None and horizon != weeks_ahead:
            raise RequestError(
                MSG_WEEK_HORIZON.format(
                    week=week, expected=weeks_ahead, origin=self.origin, horizon=horizon
                )
            )
        return weeks_ahead

    def _codes(self, h: _Horizon, areas: list[str] | None, top_k: int | None) -> list[str]:
        if areas is None:
            return h.order[:top_k] if top_k is not None else h.order
        unknown = sorted({a for a in areas if a not in self.known})
        if unknown:
            listed = ", ".join(unknown[:MAX_LISTED_UNKNOWN])
            more = len(unknown) - MAX_LISTED_UNKNOWN
            raise RequestError(
                MSG_UNKNOWN_AREAS.format(codes=listed + (f" (and {more} more)" if more > 0 else ""))
            )
        wanted = set(areas)
        return [code for code in h.order if code in wanted]

    def answer(self, request: ForecastRequest) -> dict[str, Any]:
        """Return the forecasts ``request`` asks for, ordered by rank.

        Raises
        ------
        RequestError
            For unknown areas, or a week or horizon the snapshot does not hold.
        """
        horizon = self._resolve_horizon(request.week, request.horizon)
        h = self.horizons[horizon]
        codes = self._codes(h, request.areas, request.top_k)
        if request.explain:
            forecasts = [{**h.rows[c], **h.explained[c]} for c in codes]
        else:
            forecasts = [h.rows[c] for c in codes]
        return {
            "model": {"name": self.meta.model_name, "version": self.meta.model_version},
            "origin_week": self.meta.origin_week,
            "target_week": h.target_week,
            "horizon": horizon,
            "n_areas": len(h.order),
            "forecasts": forecasts,
        }

    def answer_json(self, request: ForecastRequest) -> bytes:
        """Return :meth:`answer` serialised as JSON bytes (a join of prebuilt fragments)."""
        horizon = self._resolve_horizon(request.week, request.horizon)
        h = self.horizons[horizon]
        codes = self._codes(h, request.areas, request.top_k)
        rows = h.explained_json if request.explain else h.rows_json
        head = {
            "model": {"name": self.meta.model_name, "version": self.meta.model_version},
            "origin_week": self.meta.origin_week,
            "target_week": h.target_week,
            "horizon": horizon,
            "n_areas": len(h.order),
        }
        opening = json.dumps(head)[:-1].encode() + b', "forecasts": ['
        return b"".join((opening, b", ".join([rows[c] for c in codes]), b"]}"))

    def answer_geojson(self, request: ForecastRequest) -> dict[str, Any]:
        """Return :meth:`answer` as a GeoJSON FeatureCollection of area centroids."""
        answer = self.answer(request)
        features = [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": list(self.centroids[f["area_code"]])},
                "properties": {**f, "target_week": answer["target_week"]},
            }
            for f in answer["forecasts"]
        ]
        props = {k: v for k, v in answer.items() if k != "forecasts"}
        return {"type": "FeatureCollection", "properties": props, "features": features}

    def answer_geojson_json(self, request: ForecastRequest) -> bytes:
        """Return :meth:`answer_geojson` serialised as JSON bytes."""
        return json.dumps(self.answer_geojson(request)).encode()
