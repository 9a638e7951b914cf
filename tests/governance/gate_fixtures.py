"""Small synthetic inputs for the gate tests: areas, weekly counts, features, boosters.

The areas are a full factorial of risk level x IMD quintile x ethnic band x
district, so every audit group holds the same mix of risks: a forecast that
follows the true risk is fair by construction.
"""

from __future__ import annotations

import itertools

import lightgbm as lgb
import numpy as np
import pandas as pd

from governance.policy import Policy, load_policy

FEATURES = [
    "violence_lag1",
    "violence_mean4",
    "violence_mean13",
    "imd_decile",
    "population",
    "horizon",
]
LEVELS = np.linspace(0.1, 0.7, 10)
START = pd.Timestamp("2023-01-02")


def policy(**fairness) -> Policy:
    """The project policy, with fewer bootstrap resamples to stay fast."""
    base = load_policy()
    update = {"n_boot": 40, **fairness}
    return base.model_copy(update={"fairness": base.fairness.model_copy(update=update)})


def areas() -> pd.DataFrame:
    combos = list(itertools.product(range(len(LEVELS)), range(1, 6), "AB", ["North", "South"]))
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "area_code": [f"SYN{i:05d}" for i in range(len(combos))],
            "district": [c[3] for c in combos],
            "imd_decile": [2 * c[1] - int(rng.integers(0, 2)) for c in combos],
            "population": rng.integers(1200, 2000, len(combos)).astype(float),
            "audit_ethnic_band": [c[2] for c in combos],
            "risk": [LEVELS[c[0]] for c in combos],
        }
    )


def oracle_predictions(
    area_table: pd.DataFrame,
    *,
    weeks: int = 150,
    seed: int = 0,
    inflate: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Backtest-shaped rows whose mu is the true risk (jittered), optionally inflated by band."""
    rng = np.random.default_rng(seed)
    n = len(area_table)
    risk = area_table["risk"].to_numpy()
    factor = area_table["audit_ethnic_band"].map(inflate or {}).fillna(1.0).to_numpy()
    frames = []
    for w in range(weeks):
        target = START + pd.Timedelta(weeks=w + 1)
        y = rng.poisson(risk)
        frames.append(
            pd.DataFrame(
                {
                    "method": "model",
                    "area_code": area_table["area_code"],
                    "origin_week": target - pd.Timedelta(weeks=1),
                    "target_week": target,
                    "horizon": 1,
                    "mu": risk * factor * np.exp(rng.normal(0, 0.01, n)),
                    "y": y.astype(float),
                    "y_ae": rng.binomial(y, 0.3).astype(float),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def feature_frame(
    area_table: pd.DataFrame, *, weeks: int = 60, seed: int = 1, effect: float = 1.0
) -> pd.DataFrame:
    """Area x week rows with lag/rolling violence features, statics and the next week's y.

    ``effect`` scales how much recent violence moves next week's risk; a
    negative value makes more recent violence lower the risk.
    """
    rng = np.random.default_rng(seed)
    risk = area_table["risk"].to_numpy()
    n, history = len(area_table), 13
    counts = np.zeros((weeks + history + 1, n))
    for t in range(counts.shape[0]):
        recent = counts[max(0, t - 4) : t].mean(axis=0) if t else risk
        counts[t] = rng.poisson(np.clip(risk * (1 + effect * (recent - risk)), 0.01, None))
    frames = []
    for t in range(history, history + weeks):
        origin = START + pd.Timedelta(weeks=t)
        y = counts[t + 1]
        frames.append(
            pd.DataFrame(
                {
                    "area_code": area_table["area_code"],
                    "origin_week": origin,
                    "target_week": origin + pd.Timedelta(weeks=1),
                    "horizon": 1,
                    "violence_lag1": counts[t],
                    "violence_mean4": counts[t - 3 : t + 1].mean(axis=0),
                    "violence_mean13": counts[t - 12 : t + 1].mean(axis=0),
                    "imd_decile": area_table["imd_decile"].astype(float),
                    "population": area_table["population"],
                    "y": y,
                    "y_ae": rng.binomial(y.astype(int), 0.3).astype(float),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def train(
    features: pd.DataFrame, columns: list[str] | None = None, *, rounds: int = 40, seed: int = 0
) -> lgb.Booster:
    """A small Poisson LightGBM booster on ``columns`` (default: :data:`FEATURES`)."""
    columns = columns or FEATURES
    params = {
        "objective": "poisson",
        "verbose": -1,
        "num_threads": 1,
        "seed": seed,
        "min_data_in_leaf": 40,
        "learning_rate": 0.1,
        "num_leaves": 15,
    }
    data = lgb.Dataset(features[columns], features["y"], free_raw_data=False)
    return lgb.train(params, data, num_boost_round=rounds)


def predictions_from(booster: lgb.Booster, features: pd.DataFrame) -> pd.DataFrame:
    """Backtest-shaped rows forecast by ``booster`` on ``features``."""
    mu = booster.predict(features[booster.feature_name()])
    keys = ["area_code", "origin_week", "target_week", "horizon", "y", "y_ae"]
    return features[keys].assign(method="model", mu=mu)


def panel_from(
    predictions: pd.DataFrame, area_table: pd.DataFrame, police_bias: dict | None = None
) -> pd.DataFrame:
    """Area-week police and A&E counts behind ``predictions`` (police = y - y_ae).

    ``police_bias`` multiplies the police counts of an ethnic band.
    """
    rows = predictions.drop_duplicates(["area_code", "target_week"])
    band = rows["area_code"].map(area_table.set_index("area_code")["audit_ethnic_band"])
    factor = band.map(police_bias or {}).fillna(1.0).to_numpy()
    return pd.DataFrame(
        {
            "area_code": rows["area_code"].to_numpy(),
            "week_start": rows["target_week"].to_numpy(),
            "police_violence": np.round((rows["y"] - rows["y_ae"]).to_numpy() * factor),
            "ae_assault": rows["y_ae"].to_numpy(),
        }
    )


def write_audit_layers(root, inputs, *, backtest_features_sha256: str | None = None):
    """Write the layers ``harmcast audit`` reads, as backtest and train leave them.

    ``results.json`` and ``model_meta.json`` record the features hash and model
    settings (``inputs``) they were made from; ``backtest_features_sha256``
    gives the backtest another features hash (a backtest of an earlier model).
    Returns ``(tracking_uri, run_id)``.
    """
    import json
    from pathlib import Path

    import mlflow

    from governance.evidence import sha256_file

    root = Path(root)
    for layer, name, frame in (
        ("06_backtest", "predictions.parquet", inputs.predictions),
        ("03_panel", "areas.parquet", inputs.areas),
        ("03_panel", "panel.parquet", panel_from(inputs.predictions, inputs.areas)),
        ("04_features", "features.parquet", inputs.features),
    ):
        (root / "data" / layer).mkdir(parents=True, exist_ok=True)
        frame.to_parquet(root / "data" / layer / name)
    models = root / "data" / "05_models"
    models.mkdir(parents=True, exist_ok=True)
    inputs.booster.save_model(str(models / "model.lgb"))
    (root / "mlruns").mkdir(exist_ok=True)
    uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("harmcast")
    with mlflow.start_run() as run:
        pass
    made_from = {
        "features_sha256": sha256_file(root / "data/04_features/features.parquet"),
        "model_params": {"num_leaves": 15},
    }
    meta = {"feature_names": FEATURES, "run_id": run.info.run_id, "model_uri": "models:/m-x",
            "inputs": made_from}  # fmt: skip
    (models / "model_meta.json").write_text(json.dumps(meta))
    backtest = {
        **made_from,
        "features_sha256": backtest_features_sha256 or made_from["features_sha256"],
        "predictions_sha256": sha256_file(root / "data/06_backtest/predictions.parquet"),
    }
    results = {"summary": {"inputs": backtest, "mlflow_run_id": run.info.run_id}}
    (root / "data/06_backtest/results.json").write_text(json.dumps(results))
    return uri, run.info.run_id
