"""The forecast snapshot: every area and horizon for the latest origin week.

The service answers from this frame alone, so a request costs a lookup, not a
model call. SHAP contributions (``booster.predict(pred_contrib=True)``) are
computed once here; the full vector is kept so that anyone can check that
``sum(contributions) + bias == log(mu)`` for the Poisson model.

The snapshot *directory* is named by one hash, :func:`snapshot_sha256` (every
file but ``snapshot_meta.json``), recorded in the registry at ``harmcast
snapshot`` and checked when the service starts.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from governance.evidence import canonical_json, sha256_bytes, sha256_file
from training.errors import SchemaError

__all__ = [
    "Forecaster",
    "Snapshot",
    "SnapshotMeta",
    "build_snapshot",
    "write_snapshot",
    "snapshot_files",
    "read_snapshot",
    "snapshot_sha256",
    "files_sha256",
    "contribution_columns",
    "AREA_COLUMNS",
    "CONTRIB_PREFIX",
    "BIAS_COLUMN",
    "N_DRIVERS",
    "SNAPSHOT_FILE",
    "META_FILE",
    "MSG_MISSING_COLUMNS",
    "MSG_SHA_MISMATCH",
    "MSG_NO_ROWS",
    "MSG_BAD_META",
]

AREA_COLUMNS = ("area_code", "area_name", "district", "latitude", "longitude")
CONTRIB_PREFIX = "contrib__"
BIAS_COLUMN = "contrib_bias"
N_DRIVERS = 3
SNAPSHOT_FILE = "snapshot.parquet"
META_FILE = "snapshot_meta.json"

MSG_MISSING_COLUMNS = "missing columns {columns}"
MSG_SHA_MISMATCH = "sha256 {actual} does not match {expected} recorded in {meta}"
MSG_NO_ROWS = "no rows for the latest origin week {origin}"
MSG_BAD_META = "not a snapshot's metadata ({kind}: {cause}); rebuild it with `harmcast snapshot`"


class Forecaster(Protocol):
    """What the snapshot needs of ``training.forecaster.Forecaster``."""

    booster: Any
    feature_names: Sequence[str]

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return ``mu, q_lo, q_hi, p_any`` for each row of ``frame``."""


@dataclass(frozen=True)
class SnapshotMeta:
    """Provenance of a snapshot (``snapshot_meta.json``)."""

    origin_week: str
    horizons: tuple[int, ...]
    model_name: str
    model_version: str | None
    created_at: str
    feature_names: tuple[str, ...]
    hotspot_coverage: float
    n_areas: int
    sha256: str = ""
    #: :func:`snapshot_sha256` of the directory as written; informative only:
    #: the service checks the directory against the registry, never against this
    snapshot_sha256: str = ""
    #: what ``mu`` is: ``model`` (the booster), ``stacked`` or a baseline's name
    served_method: str = "model"
    #: horizon -> component -> weight of the served forecast (empty: the booster alone)
    weights: dict = field(default_factory=dict)
    #: the served choice in words (``stack.json``); the drivers explain the booster only
    served_reason: str = ""


@dataclass(frozen=True)
class Snapshot:
    """The snapshot frame (one row per area and horizon) and its provenance."""

    frame: pd.DataFrame
    meta: SnapshotMeta


def contribution_columns(feature_names: Sequence[str]) -> list[str]:
    """Return the snapshot's contribution columns, in feature order."""
    return [CONTRIB_PREFIX + name for name in feature_names]


def _require(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SchemaError(name, MSG_MISSING_COLUMNS.format(columns=missing))


def _default_describe() -> Callable[[str], str]:
    from training.features import describe_feature

    return describe_feature


def _hotspot_count(coverage: float, n_areas: int) -> int:
    # round first: 0.1 * 60 is 6.000000000000001 in floating point
    return max(1, math.ceil(round(coverage * n_areas, 9)))


def _rank_columns(frame: pd.DataFrame, coverage: float) -> pd.DataFrame:
    ordered = frame.sort_values(["horizon", "mu", "area_code"], ascending=[True, False, True])
    rank = ordered.groupby("horizon").cumcount() + 1
    n_areas = ordered.groupby("horizon")["area_code"].transform("size")
    at_or_below = ordered.groupby("horizon")["mu"].rank(method="max", ascending=True)
    return ordered.assign(
        rank=rank.astype("int64"),
        percentile=100.0 * at_or_below / n_areas,
        hotspot=rank <= n_areas.map(lambda n: _hotspot_count(coverage, n)),
    )


def _driver_columns(
    contrib: np.ndarray, feature_names: Sequence[str], describe: Callable[[str], str]
) -> dict[str, list[Any]]:
    descriptions = {name: describe(name) for name in feature_names}
    top = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :N_DRIVERS]
    columns: dict[str, list[Any]] = {}
    for i in range(min(N_DRIVERS, len(feature_names))):
        idx = top[:, i]
        values = contrib[np.arange(len(idx)), idx]
        names = [feature_names[j] for j in idx]
        columns[f"driver_{i + 1}_feature"] = names
        columns[f"driver_{i + 1}_description"] = [descriptions[n] for n in names]
        columns[f"driver_{i + 1}_direction"] = ["raises" if v > 0 else "lowers" for v in values]
        columns[f"driver_{i + 1}_contribution"] = values.tolist()
    return columns


def build_snapshot(
    features: pd.DataFrame,
    forecaster: Forecaster,
    areas: pd.DataFrame,
    *,
    policy_coverage: float,
    model_name: str = "harmcast-violence",
    model_version: str | int | None = None,
    describe: Callable[[str], str] | None = None,
    created_at: dt.datetime | None = None,
    components: pd.DataFrame | None = None,
) -> Snapshot:
    """Forecast every area and horizon from the latest origin week.

    Parameters
    ----------
    features : the features frame (``area_code``, ``origin_week``, ``horizon``
        and the forecaster's feature columns).
    forecaster : the approved model (``booster``, ``feature_names``, ``predict``).
    areas : the areas frame; only ``AREA_COLUMNS`` are kept (never ``audit_*``).
    policy_coverage : share of areas flagged as hotspots (``policy.serving``).
    model_name, model_version : recorded in the metadata.
    describe : plain words for a feature name (default
        ``training.features.describe_feature``).
    created_at : timestamp recorded in the metadata (default: now, UTC).
    components : ``method, area_code, horizon, mu`` of the baseline components at
        the latest origin (``training.stacking.component_forecasts``), needed when
        the forecaster's ``stack`` serves a combination or a baseline. The
        drivers always explain the booster's part.

    Returns
    -------
    Snapshot
        One row per area and horizon with ``mu, q_lo, q_hi, p_any, rank,
        percentile, hotspot``, the top drivers and every contribution.
    """
    names = list(forecaster.feature_names)
    _require(features, ["area_code", "origin_week", "horizon", *names], "features")
    _require(areas, AREA_COLUMNS, "areas")
    describe = describe or _default_describe()
    origin = features["origin_week"].max()
    latest = features.loc[features["origin_week"] == origin].reset_index(drop=True)
    if latest.empty:
        raise SchemaError("features", MSG_NO_ROWS.format(origin=origin))
    predicted, served = _served(forecaster, latest, components)
    # float32, as Forecaster.predict feeds the booster: same leaves, so contributions add up
    matrix = latest[names].to_numpy(np.float32)
    contrib = np.asarray(forecaster.booster.predict(matrix, pred_contrib=True))
    frame = pd.DataFrame(
        {
            "area_code": latest["area_code"].astype(str),
            "origin_week": pd.to_datetime(latest["origin_week"]),
            "horizon": latest["horizon"].astype("int64"),
            **{c: predicted[c].to_numpy(dtype="float64") for c in ("mu", "q_lo", "q_hi", "p_any")},
            **_driver_columns(contrib[:, :-1], names, describe),
            **dict(zip(contribution_columns(names), contrib[:, :-1].T, strict=True)),
            BIAS_COLUMN: contrib[:, -1],
        }
    )
    frame["target_week"] = frame["origin_week"] + pd.to_timedelta(7 * frame["horizon"], unit="D")
    area_info = areas.loc[:, list(AREA_COLUMNS)].astype({"area_code": str})
    ranked = _rank_columns(frame, policy_coverage).merge(area_info, on="area_code", how="left")
    meta = SnapshotMeta(
        origin_week=pd.Timestamp(origin).date().isoformat(),
        horizons=tuple(sorted(int(h) for h in frame["horizon"].unique())),
        model_name=model_name,
        model_version=None if model_version is None else str(model_version),
        created_at=(created_at or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
        feature_names=tuple(names),
        hotspot_coverage=float(policy_coverage),
        n_areas=int(frame["area_code"].nunique()),
        **served,
    )
    return Snapshot(frame=ranked.reset_index(drop=True), meta=meta)


def _served(forecaster: Forecaster, latest: pd.DataFrame, components: pd.DataFrame | None):
    """Return the served forecast of each row and what the metadata says of it."""
    stack = getattr(forecaster, "stack", None)
    if stack is None or stack.served_method == "model":
        return forecaster.predict(latest).reset_index(drop=True), {}
    from training.forecaster import serve_forecast

    mu = forecaster.predict_mu(latest)
    predicted = serve_forecast(forecaster, latest, mu, components)
    weights = {
        str(h): {c: float(v) for c, v in zip(stack.components, w, strict=True) if v > 0}
        for h, w in sorted(stack.weights.items())
    }
    return predicted, {
        "served_method": stack.served_method,
        "weights": weights,
        "served_reason": stack.reason,
    }


def files_sha256(file_hashes: dict[str, str]) -> str:
    """Return the hash naming a set of files, given ``{relative name: sha256}``.

    Examples
    --------
    >>> files_sha256({"b": "2", "a": "1"}) == files_sha256({"a": "1", "b": "2"})
    True
    """
    return sha256_bytes(canonical_json(file_hashes))


def snapshot_sha256(directory: str | Path) -> str:
    """Return the SHA-256 that names a snapshot directory.

    ``sha256_bytes(canonical_json({name: sha256_file(file)}))`` over every file
    under ``directory`` (names relative to it, ``/``-separated) except
    ``snapshot_meta.json``, which carries this hash and so cannot be covered by it.

    Raises
    ------
    SchemaError
        When ``directory`` is not a folder holding ``snapshot.parquet``.
    """
    directory = Path(directory)
    if not (directory / SNAPSHOT_FILE).is_file():
        raise SchemaError(directory / SNAPSHOT_FILE, "snapshot file not found")
    hashes = {
        path.relative_to(directory).as_posix(): sha256_file(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.relative_to(directory).as_posix() != META_FILE
    }
    return files_sha256(hashes)


def snapshot_files(snapshot: Snapshot, out_dir: Path) -> tuple[Snapshot, dict[Path, bytes]]:
    """Return the snapshot with its hashes and the bytes of its two files, by path.

    Nothing is written: a caller that writes other files too (the weekly cycle)
    stages them all before renaming any (``training.atomic``).
    """
    out_dir = Path(out_dir)
    buffer = io.BytesIO()
    snapshot.frame.to_parquet(buffer, index=False)
    data = buffer.getvalue()
    meta = replace(
        snapshot.meta,
        sha256=sha256_bytes(data),
        snapshot_sha256=files_sha256({SNAPSHOT_FILE: sha256_bytes(data)}),
    )
    text = json.dumps(asdict(meta), indent=2) + "\n"
    files = {out_dir / SNAPSHOT_FILE: data, out_dir / META_FILE: text.encode()}
    return Snapshot(frame=snapshot.frame, meta=meta), files


def write_snapshot(snapshot: Snapshot, out_dir: Path) -> Snapshot:
    """Write ``snapshot.parquet`` and ``snapshot_meta.json``; return it with its sha256.

    Both files are written beside their targets and then renamed into place,
    so the service never reads half a file, and a failure before the renames
    leaves the published snapshot as it was.
    """
    from training.atomic import write_files  # not in the bento: the service never writes

    written, files = snapshot_files(snapshot, out_dir)
    write_files(files)
    return written


def _read_meta(path: Path) -> SnapshotMeta:
    try:
        raw = json.loads(path.read_bytes().decode("utf-8"))
        return SnapshotMeta(
            **{
                **raw,
                "horizons": tuple(raw["horizons"]),
                "feature_names": tuple(raw["feature_names"]),
            }
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise SchemaError(path, MSG_BAD_META.format(kind=type(exc).__name__, cause=exc)) from exc


def read_snapshot(directory: Path) -> Snapshot:
    """Read a snapshot written by :func:`write_snapshot`, verifying its sha256.

    Raises
    ------
    SchemaError
        When a file is missing, the meta is not a snapshot's, or the parquet
        does not hash to the recorded sha256.
    """
    meta_path, data_path = directory / META_FILE, directory / SNAPSHOT_FILE
    for path in (meta_path, data_path):
        if not path.is_file():
            raise SchemaError(path, "snapshot file not found (run `harmcast snapshot`)")
    meta = _read_meta(meta_path)
    data = data_path.read_bytes()
    actual = sha256_bytes(data)
    if actual != meta.sha256:
        raise SchemaError(
            data_path, MSG_SHA_MISMATCH.format(actual=actual, expected=meta.sha256, meta=meta_path)
        )
    return Snapshot(frame=pd.read_parquet(io.BytesIO(data)), meta=meta)
