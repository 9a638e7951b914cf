"""What the governance gate reads: backtest forecasts, areas, the candidate and its folds."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import pandas as pd

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
    "MISSING_FILE",
    "MISSING_COLUMN",
    "NO_MODEL_ROWS",
]

PREDICTION_COLUMNS = prediction_columns(
    "method", "area_code", "origin_week", "target_week", "horizon", "mu", "y", "y_ae"
)
AREA_COLUMNS = ("area_code", "district", "imd_decile")
MISSING_FILE = "not found; run `harmcast {step}` first"
MISSING_COLUMN = "missing column; expected {expected}"
NO_MODEL_ROWS = "no rows with method == 'model'"


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
    run_id, model_uri : the candidate's MLflow run and logged model.
    """

    predictions: pd.DataFrame
    areas: pd.DataFrame
    booster: lgb.Booster
    feature_names: list[str]
    features: pd.DataFrame
    folds: list[FoldModel] = field(default_factory=list)
    run_id: str = ""
    model_uri: str = ""


def load_gate_inputs(root: str | Path, params: Params) -> GateInputs:
    """Read the gate's inputs from the data layers under ``root``.

    Reads ``data/06_backtest/predictions.parquet`` (model rows),
    ``data/03_panel/areas.parquet``, ``data/05_models/model.lgb`` and
    ``model_meta.json`` (``feature_names``, ``run_id``, ``model_uri``),
    ``data/04_features/features.parquet`` and ``data/06_backtest/folds/``.

    Raises
    ------
    SchemaError
        When a file or a required column is missing.
    """
    paths = params.paths.model_copy(update={"root": Path(root)})
    backtest, models = paths.resolve("backtest"), paths.resolve("models")
    predictions = _read(backtest / "predictions.parquet", "backtest", PREDICTION_COLUMNS)
    predictions = predictions[predictions["method"] == "model"].reset_index(drop=True)
    if predictions.empty:
        raise SchemaError(backtest / "predictions.parquet", NO_MODEL_ROWS, field="method")
    areas = _read(paths.resolve("panel") / "areas.parquet", "panel", AREA_COLUMNS)
    meta_path = models / "model_meta.json"
    model_path = models / "model.lgb"
    for path in (meta_path, model_path):
        if not path.is_file():
            raise SchemaError(path, MISSING_FILE.format(step="train"))
    meta = json.loads(meta_path.read_text())
    booster = lgb.Booster(model_file=str(model_path))
    names = list(meta.get("feature_names") or booster.feature_name())
    features = _read(
        paths.resolve("features") / "features.parquet",
        "features",
        ("area_code", "origin_week", "horizon", *names),
    )
    return GateInputs(
        predictions=predictions,
        areas=areas,
        booster=booster,
        feature_names=names,
        features=features,
        folds=fold_models(backtest, features),
        run_id=str(meta.get("run_id") or ""),
        model_uri=str(meta.get("model_uri") or ""),
    )


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
    frame = pd.read_parquet(path)
    for name in columns:
        if name not in frame.columns:
            raise SchemaError(path, MISSING_COLUMN.format(expected=list(columns)), field=name)
    return frame
