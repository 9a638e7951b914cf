"""What the briefing needs beyond the forecasts, built when the snapshot is.

Written beside ``snapshot.parquet`` in the snapshot directory, so the
snapshot's directory hash covers them and the bento carries them:

- ``briefing_history.parquet``: per area, the last :data:`HISTORY_WEEKS` weeks
  observed (``observed``) and what the served model forecast for each of them
  one week ahead (``forecast``);
- ``briefing_previous.parquet``: per area and horizon, last week's forecast
  (made from the origin week before), for the change since then;
- ``briefing_areas.parquet``: each area's size in km2, for densities;
- ``boundaries.geojson``: the areas' polygons, when the reference layer has them;
- ``briefing_meta.json``: which snapshot these belong to.

Only the forecaster's ``predict`` is called: nothing here fits a model. When
the model directory's ``stack.json`` serves a combination or a baseline, the
history and last week's forecast are the served forecast's too, from the
component forecasts at :func:`briefing_origins` given by the caller.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd

from serving.snapshot import Forecaster, Snapshot, snapshot_files
from training.errors import SchemaError

__all__ = [
    "build_briefing_files",
    "briefing_origins",
    "boundaries_geojson",
    "HISTORY_WEEKS",
    "HISTORY_FILE",
    "PREVIOUS_FILE",
    "AREAS_FILE",
    "BOUNDARIES_FILE",
    "BRIEFING_META_FILE",
    "MSG_NO_TARGET",
]

HISTORY_WEEKS = 26
HISTORY_FILE = "briefing_history.parquet"
PREVIOUS_FILE = "briefing_previous.parquet"
AREAS_FILE = "briefing_areas.parquet"
BOUNDARIES_FILE = "boundaries.geojson"
BRIEFING_META_FILE = "briefing_meta.json"
MSG_NO_TARGET = "the features frame has no observed target column 'y'"
_DECIMALS = 5  # about a metre: enough for a map, a third of the bytes


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def briefing_origins(features: pd.DataFrame) -> pd.DatetimeIndex:
    """Return the origin weeks the snapshot and its briefing forecast from (latest last)."""
    origins = pd.DatetimeIndex(pd.to_datetime(features["origin_week"]).unique()).sort_values()
    return origins[origins >= origins[-1] - pd.Timedelta(weeks=HISTORY_WEEKS)]


def _served_mu(forecaster: Forecaster, frame: pd.DataFrame, components) -> pd.Series:
    stack = getattr(forecaster, "stack", None)
    if stack is None or stack.served_method == "model":
        return forecaster.predict(frame).reset_index(drop=True)["mu"]
    from training.forecaster import serve_forecast

    return serve_forecast(forecaster, frame, forecaster.predict_mu(frame), components)["mu"]


def _history(
    features: pd.DataFrame, forecaster: Forecaster, origin: pd.Timestamp, components=None
) -> pd.DataFrame:
    one_ahead = features.loc[features["horizon"] == 1]
    first = origin - pd.Timedelta(weeks=HISTORY_WEEKS - 1)
    target = pd.to_datetime(one_ahead["target_week"])
    past = one_ahead.loc[(target >= first) & (target <= origin)].reset_index(drop=True)
    served = _served_mu(forecaster, past, components)
    return pd.DataFrame(
        {
            "area_code": past["area_code"].astype(str),
            "week": pd.to_datetime(past["target_week"]),
            "observed": past["y"].astype("float64"),
            "forecast": served.to_numpy(dtype="float64"),
        }
    ).sort_values(["area_code", "week"], ignore_index=True)


def _previous(
    features: pd.DataFrame, forecaster: Forecaster, origin: pd.Timestamp, components=None
) -> pd.DataFrame:
    before = features.loc[pd.to_datetime(features["origin_week"]) == origin - pd.Timedelta(weeks=1)]
    before = before.reset_index(drop=True)
    served = _served_mu(forecaster, before, components)
    return pd.DataFrame(
        {
            "area_code": before["area_code"].astype(str),
            "horizon": before["horizon"].astype("int64"),
            "previous_mu": served.to_numpy(dtype="float64"),
        }
    )


def _round(coordinates: Any) -> Any:
    if isinstance(coordinates, (int, float)):
        return round(float(coordinates), _DECIMALS)
    return [_round(c) for c in coordinates]


def boundaries_geojson(path: Path, area_codes: set[str]) -> bytes:
    """Return the polygons of ``area_codes`` from ``path``, coordinates rounded.

    Raises
    ------
    SchemaError
        When a feature has no ``properties.area_code`` or no geometry.
    """
    collection = json.loads(Path(path).read_text())
    features = []
    for row, feature in enumerate(collection.get("features", [])):
        code = (feature.get("properties") or {}).get("area_code")
        geometry = feature.get("geometry") or {}
        if code is None or "coordinates" not in geometry:
            raise SchemaError(
                path, "properties.area_code and geometry required", field=f"features[{row}]"
            )
        if str(code) in area_codes:
            features.append(
                {
                    "type": "Feature",
                    "properties": {"area_code": str(code)},
                    "geometry": {
                        "type": geometry["type"],
                        "coordinates": _round(geometry["coordinates"]),
                    },
                }
            )
    body = {"type": "FeatureCollection", "features": features}
    return json.dumps(body, separators=(",", ":")).encode()


def build_briefing_files(
    snapshot: Snapshot,
    features: pd.DataFrame,
    forecaster: Forecaster,
    areas: pd.DataFrame,
    out_dir: Path,
    *,
    boundaries: Path | None = None,
    components: pd.DataFrame | None = None,
) -> dict[Path, bytes]:
    """Return the briefing's extra snapshot files, by path (nothing is written).

    Parameters
    ----------
    snapshot : the snapshot these belong to (its origin week; its sha256 is
        computed here when it was not written yet).
    features : the features frame the snapshot was built from (with ``y``).
    forecaster : the served model (only ``predict`` is called).
    areas : the areas frame (``area_code``, ``area_km2``).
    out_dir : the snapshot directory.
    boundaries : ``reference/boundaries.geojson``; None or a missing file: no polygons.
    components : the baseline components at :func:`briefing_origins` (with
        ``origin_week``), needed when the forecaster's stack serves them.
    """
    if "y" not in features.columns:
        raise SchemaError("features", MSG_NO_TARGET)
    if not snapshot.meta.sha256:
        snapshot = snapshot_files(snapshot, Path(out_dir))[0]
    origin = pd.Timestamp(snapshot.meta.origin_week)
    codes = set(snapshot.frame["area_code"].astype(str))
    out_dir = Path(out_dir)
    km2 = areas.loc[areas["area_code"].astype(str).isin(codes), ["area_code", "area_km2"]]
    files = {
        out_dir / HISTORY_FILE: _parquet(_history(features, forecaster, origin, components)),
        out_dir / PREVIOUS_FILE: _parquet(_previous(features, forecaster, origin, components)),
        out_dir / AREAS_FILE: _parquet(
            km2.astype({"area_code": str, "area_km2": "float64"}).reset_index(drop=True)
        ),
    }
    if boundaries is not None and Path(boundaries).is_file():
        files[out_dir / BOUNDARIES_FILE] = boundaries_geojson(boundaries, codes)
    meta = {
        "origin_week": snapshot.meta.origin_week,
        "snapshot_parquet_sha256": snapshot.meta.sha256,
        "history_weeks": HISTORY_WEEKS,
        "files": sorted(p.name for p in files),
    }
    files[out_dir / BRIEFING_META_FILE] = (json.dumps(meta, indent=2) + "\n").encode()
    return files
