"""What the governance gate reads: backtest forecasts, areas, the candidate and its folds."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import pandas as pd

from governance.evidence import canonical_json, model_artefact_sha256, sha256_bytes, sha256_file
from governance.explain import FoldModel
from training.config import Params
from training.errors import SchemaError
from training.predictions import prediction_columns

__all__ = [
    "GateInputs",
    "load_gate_inputs",
    "fold_models",
    "PREDICTION_COLUMNS",
    "AREA_COLUMNS",
    "PANEL_COLUMNS",
    "MISSING_FILE",
    "MISSING_COLUMN",
    "NO_MODEL_ROWS",
    "NO_PROVENANCE",
    "FEATURES_CHANGED",
    "STALE_BACKTEST",
    "PREDICTIONS_CHANGED",
]

PREDICTION_COLUMNS = prediction_columns(
    "method", "area_code", "origin_week", "target_week", "horizon", "mu", "y", "y_ae"
)
AREA_COLUMNS = ("area_code", "district", "imd_decile")
PANEL_COLUMNS = ("area_code", "week_start", "police_violence", "ae_assault")
MISSING_FILE = "not found; run `harmcast {step}` first"
MISSING_COLUMN = "missing column; expected {expected}"
NO_MODEL_ROWS = "no rows with method == 'model'"
NO_PROVENANCE = (
    "records no {key!r} (the features and model settings it was made from); "
    "re-run `harmcast {step}`"
)
FEATURES_CHANGED = (
    "the candidate was trained on features sha256 {recorded}, but {features} is now "
    "sha256 {actual}; re-run `harmcast backtest` and `harmcast train`"
)
STALE_BACKTEST = (
    "the backtest was made from other inputs than the candidate ({what}: backtest "
    "{backtest}, candidate {candidate}); its forecasts are not the candidate's. "
    "Re-run `harmcast backtest` and `harmcast train`"
)
PREDICTIONS_CHANGED = (
    "sha256 {actual} is not the {recorded} the backtest recorded; re-run `harmcast backtest`"
)


@dataclass(frozen=True)
class GateInputs:
    """Everything the gate audits.

    Attributes
    ----------
    predictions : the model's backtest rows (``method == "model"``).
    areas : the areas table, audit-only columns included.
    booster, feature_names : the candidate model and its columns, in order.
    features : the feature frame (keys plus feature columns): the SHAP sample is
        drawn from it and the champion forecasts the backtest rows from it.
    folds : the backtest refits, for SHAP stability.
    panel : area-week police and A&E counts, for the recording check (None: skipped).
    run_id, model_uri : the candidate's MLflow run and logged model.
    model_sha256, predictions_sha256, features_sha256 : the hashes of exactly
        what is audited (the gate report's ``subject``).
    """

    predictions: pd.DataFrame
    areas: pd.DataFrame
    booster: lgb.Booster
    feature_names: list[str]
    features: pd.DataFrame
    folds: list[FoldModel] = field(default_factory=list)
    run_id: str = ""
    model_uri: str = ""
    model_sha256: str = ""
    predictions_sha256: str = ""
    features_sha256: str = ""
    panel: pd.DataFrame | None = None


def load_gate_inputs(root: str | Path, params: Params) -> GateInputs:
    """Read the gate's inputs from the data layers under ``root``.

    Reads ``data/06_backtest/predictions.parquet`` (model rows),
    ``data/03_panel/areas.parquet`` and ``panel.parquet``, ``data/05_models/model.lgb`` and
    ``model_meta.json`` (``feature_names``, ``run_id``, ``model_uri``),
    ``data/04_features/features.parquet`` and ``data/06_backtest/folds/``.

    The candidate's ``model_meta.json`` and the backtest's ``results.json``
    each record the features hash and model settings they were made from
    (``inputs``); the audit reads the backtest's forecasts only when both match
    the features on disk, so a model retrained on other data is never audited
    on an earlier model's forecasts.

    Raises
    ------
    SchemaError
        When a file or a required column is missing, or the backtest, the
        candidate and the features on disk are not of one making.
    """
    paths = params.paths.model_copy(update={"root": Path(root)})
    backtest, models = paths.resolve("backtest"), paths.resolve("models")
    meta_path, model_path = models / "model_meta.json", models / "model.lgb"
    for path in (meta_path, model_path):
        if not path.is_file():
            raise SchemaError(path, MISSING_FILE.format(step="train"))
    meta = json.loads(meta_path.read_text())
    features_path = paths.resolve("features") / "features.parquet"
    if not features_path.is_file():
        raise SchemaError(features_path, MISSING_FILE.format(step="features"))
    features_sha = sha256_file(features_path)
    recorded = _candidate_inputs(meta_path, meta, features_path, features_sha)
    predictions_path = backtest / "predictions.parquet"
    if not predictions_path.is_file():
        raise SchemaError(predictions_path, MISSING_FILE.format(step="backtest"))
    # Hash the bytes that are parsed, so the hash names exactly what is audited.
    data = predictions_path.read_bytes()
    predictions_sha = sha256_bytes(data)
    _check_backtest(backtest / "results.json", recorded, predictions_path, predictions_sha)
    predictions = _columns(pd.read_parquet(io.BytesIO(data)), predictions_path, PREDICTION_COLUMNS)
    predictions = predictions[predictions["method"] == "model"].reset_index(drop=True)
    if predictions.empty:
        raise SchemaError(predictions_path, NO_MODEL_ROWS, field="method")
    areas = _read(paths.resolve("panel") / "areas.parquet", "panel", AREA_COLUMNS)
    panel = _read(paths.resolve("panel") / "panel.parquet", "panel", PANEL_COLUMNS)
    booster = lgb.Booster(model_file=str(model_path))
    names = list(meta.get("feature_names") or booster.feature_name())
    features = _read(features_path, "features", ("area_code", "origin_week", "horizon", *names))
    return GateInputs(
        predictions=predictions,
        areas=areas,
        booster=booster,
        feature_names=names,
        features=features,
        folds=fold_models(backtest, features),
        run_id=str(meta.get("run_id") or ""),
        model_uri=str(meta.get("model_uri") or ""),
        model_sha256=model_artefact_sha256(model_path),
        predictions_sha256=predictions_sha,
        features_sha256=features_sha,
        panel=panel[list(PANEL_COLUMNS)],
    )


def _candidate_inputs(meta_path: Path, meta: dict, features_path: Path, actual: str) -> dict:
    recorded = meta.get("inputs")
    if not isinstance(recorded, dict) or "features_sha256" not in recorded:
        raise SchemaError(
            meta_path, NO_PROVENANCE.format(key="inputs", step="train"), field="inputs"
        )
    if recorded["features_sha256"] != actual:
        message = FEATURES_CHANGED.format(
            recorded=recorded["features_sha256"], features=features_path, actual=actual
        )
        raise SchemaError(meta_path, message, field="inputs.features_sha256")
    return recorded


def _check_backtest(results_path: Path, candidate: dict, predictions: Path, actual: str) -> None:
    if not results_path.is_file():
        raise SchemaError(results_path, MISSING_FILE.format(step="backtest"))
    made_from = json.loads(results_path.read_text()).get("summary", {}).get("inputs")
    if not isinstance(made_from, dict):
        message = NO_PROVENANCE.format(key="summary.inputs", step="backtest")
        raise SchemaError(results_path, message, field="summary.inputs")
    for key in ("features_sha256", "model_params"):
        if made_from.get(key) != candidate.get(key):
            message = STALE_BACKTEST.format(
                what=key, backtest=_short(made_from.get(key)), candidate=_short(candidate.get(key))
            )
            raise SchemaError(results_path, message, field=f"summary.inputs.{key}")
    if made_from.get("predictions_sha256") != actual:
        message = PREDICTIONS_CHANGED.format(
            actual=actual, recorded=made_from.get("predictions_sha256")
        )
        raise SchemaError(predictions, message)


def _short(value) -> str:
    if isinstance(value, str):
        return value[:16]
    return sha256_bytes(canonical_json(value))[:16] if value else "none"


def fold_models(backtest_dir: Path, features: pd.DataFrame) -> list[FoldModel]:
    """Read the fold boosters of ``folds/folds.json``, each with the rows it forecast.

    A fold trained at cutoff ``c`` forecasts origin weeks from ``c`` up to the
    next fold's cutoff (the last fold: every later origin week).
    """
    index_path = backtest_dir / "folds" / "folds.json"
    if not index_path.is_file():
        return []
    index = sorted(json.loads(index_path.read_text()), key=lambda e: e["origin_week"])
    cutoffs = [pd.Timestamp(e["origin_week"]) for e in index]
    ends = [*cutoffs[1:], pd.Timestamp.max]
    out = []
    for entry, start, end in zip(index, cutoffs, ends, strict=True):
        path = backtest_dir / "folds" / entry["file"]
        if not path.is_file():
            raise SchemaError(path, MISSING_FILE.format(step="backtest"))
        weeks = features["origin_week"]
        rows = features[(weeks >= start) & (weeks < end)]
        booster = lgb.Booster(model_file=str(path))
        out.append(FoldModel(fold=int(entry["k"]), booster=booster, rows=rows))
    return out


def _read(path: Path, step: str, columns: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise SchemaError(path, MISSING_FILE.format(step=step))
    return _columns(pd.read_parquet(path), path, columns)


def _columns(frame: pd.DataFrame, path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    for name in columns:
        if name not in frame.columns:
            raise SchemaError(path, MISSING_COLUMN.format(expected=list(columns)), field=name)
    return frame
