"""Shared builders for the registry, review and card tests: a real sqlite MLflow
registry, a small real LightGBM model, and gate/backtest report files shaped like
the ones ``harmcast audit`` and ``harmcast backtest`` write."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import lightgbm as lgb
import matplotlib
import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from governance.gate_record import log_gate_report
from governance.policy import DEFAULT_POLICY_PATH, Policy, load_policy
from governance.registry import logged_model_sha256

matplotlib.use("Agg")

MODEL_NAME = "harmcast-violence"
FEATURES = ["violence_lag_1", "violence_mean_4", "violence_mean_13", "imd_decile"]


def policy() -> Policy:
    return load_policy(DEFAULT_POLICY_PATH)


_TEMPLATE: list[Path] = []


def tracking_uri(tmp_path: Path) -> str:
    """A real sqlite registry in tmp_path, copied from a once-migrated empty database
    (creating the MLflow schema takes seconds; copying the empty file does not)."""
    db = tmp_path / "mlflow.db"
    if not db.exists():
        if not _TEMPLATE:
            template = Path(tempfile.mkdtemp()) / "mlflow.db"
            MlflowClient(f"sqlite:///{template}").search_experiments()
            _TEMPLATE.append(template)
        shutil.copyfile(_TEMPLATE[0], db)
    return f"sqlite:///{db}"


def log_candidate(uri: str, *, seed: int = 0) -> tuple[str, str]:
    """Train a tiny Poisson LightGBM model, log it to a new run, return (run_id, uri)."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.poisson(3, size=(80, len(FEATURES))).astype(float), columns=FEATURES)
    y = rng.poisson(1 + 0.3 * x["violence_lag_1"].to_numpy())
    booster = lgb.train(
        {"objective": "poisson", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5},
        lgb.Dataset(x, y),
        num_boost_round=5,
    )
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("harmcast")
    # Artifacts beside the database in tmp_path, never in the working directory.
    artifacts = Path(uri.removeprefix("sqlite:///")).parent / "artifacts"
    exp_id = (
        experiment.experiment_id
        if experiment
        else client.create_experiment("harmcast", artifact_location=artifacts.as_uri())
    )
    with mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.set_tags({"harmcast.stage": "candidate", "harmcast.data_sha256": "d" * 64})
        info = mlflow.lightgbm.log_model(
            booster, name="model", input_example=x.head(2), pip_requirements=["lightgbm"]
        )
    return run.info.run_id, info.model_uri


def log_audit(run_id: str, report: dict) -> str:
    """Log ``report`` to the run as ``harmcast audit`` does; return its SHA-256."""
    uri = mlflow.get_tracking_uri()
    return log_gate_report(MlflowClient(uri), run_id, report)


def gate_report(run_id: str, model_uri: str, policy_sha: str, *, passed: bool = True) -> dict:
    """A gate report on the logged model ``model_uri`` (its subject names the model's hash)."""
    subject = {
        "run_id": run_id,
        "model_sha256": logged_model_sha256(model_uri, mlflow.get_tracking_uri()),
        "policy_sha256": policy_sha,
        "predictions_sha256": "p" * 64,
        "features_sha256": "f" * 64,
    }
    checks = [
        {
            "name": "calibration_ratio:imd_quintile:Q1",
            "category": "fairness",
            "passed": True,
            "gated": True,
            "value": 1.05,
            "lower": 0.8,
            "upper": 1.25,
            "ci_low": 0.97,
            "ci_high": 1.12,
            "detail": "Q1 vs Q3",
        },
        {
            "name": "fpr_top_k:ethnic_band:B",
            "category": "fairness",
            "passed": passed,
            "gated": True,
            "value": 1.1 if passed else 1.6,
            "lower": 0.8,
            "upper": 1.25,
            "ci_low": 0.9,
            "ci_high": 1.4 if passed else 1.9,
            "detail": "band B vs largest",
        },
        {
            "name": "proxy_share",
            "category": "shap",
            "passed": True,
            "gated": True,
            "value": 0.12,
            "lower": None,
            "upper": 0.35,
            "ci_low": None,
            "ci_high": None,
            "detail": "imd_decile, population",
        },
        {
            "name": "miss_share:district:North",
            "category": "fairness",
            "passed": False,
            "gated": False,
            "value": 1.4,
            "lower": 0.8,
            "upper": 1.25,
            "ci_low": 1.0,
            "ci_high": 1.8,
            "detail": "reported only",
        },
    ]
    return {
        "run_id": run_id,
        "model_uri": model_uri,
        "policy_sha256": policy_sha,
        "created_at": "2025-01-06T10:00:00+00:00",
        "passed": passed,
        "subject": subject,
        "checks": checks,
        "fairness": {"groupings": ["imd_quintile", "ethnic_band", "district"]},
        "shap": {
            "top_features": [
                {"feature": "violence_lag_1", "mean_abs_shap": 0.41},
                {"feature": "violence_mean_4", "mean_abs_shap": 0.22},
                {"feature": "imd_decile", "mean_abs_shap": 0.05},
            ]
        },
        "champion": {"production_version": None, "passed": True},
        "extra_field_from_the_future": {"ignored": True},
    }


def write_png(path: Path, title: str) -> Path:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1, 2], [1, 3, 2])
    ax.set_title(title)
    fig.savefig(path, dpi=40)
    plt.close(fig)
    return path


#: The ablation table as ``training.backtest.ablation`` writes it (one group).
ABLATIONS = [
    {"group": "council_lead", "words": "council indicators (evictions, exclusions) 3-8 weeks "
     "back and their jump against the area's usual level", "n_columns": 16, "metric": metric,
     "horizon": 1, "difference": d, "ci_low": lo, "ci_high": hi, "p_value": 0.01,
     "group_helps": helps, "n_weeks": 26}
    for metric, d, lo, hi, helps in (
        ("poisson_deviance", -0.004, -0.007, -0.001, True),
        ("pai_area_5", 0.02, -0.01, 0.05, False),
        ("pai_area_10", 0.03, 0.01, 0.06, True),
    )
]  # fmt: skip


def write_reports(root: Path, run_id: str, model_uri: str, policy_sha: str) -> dict[str, Path]:
    """Write the backtest, linkage, model-meta and gate report files a card reads."""
    paths = {
        "results": root / "data/06_backtest/results.json",
        "linkage": root / "data/02_linked/linkage_report.json",
        "meta": root / "data/05_models/model_meta.json",
        "gate": root / "data/07_audit/gate_report.json",
    }
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    table = [
        {
            "method": m,
            "horizon": h,
            "n": 1200,
            "poisson_deviance": dev + 0.01 * h,
            "pai_area_10": pai - 0.1 * h,
            "mae": mae,
        }
        for m, dev, pai, mae in [
            ("model", 0.91, 3.2, 1.1),
            ("last_week", 1.12, 2.4, 1.4),
            ("oracle", 0.85, 3.6, 1.0),
        ]
        for h in (1, 2)
    ]
    margins = [
        {
            "metric": "poisson_deviance",
            "horizon": 1,
            "comparator": "last_week",
            "difference": -0.21,
            "ci_low": -0.26,
            "ci_high": -0.15,
            "p_value": 0.001,
            "model_better": True,
            "n_weeks": 26,
        },
        {
            "metric": "pai_area_10",
            "horizon": 1,
            "comparator": "ablation_police_only",
            "difference": 0.35,
            "ci_low": 0.12,
            "ci_high": 0.55,
            "p_value": 0.01,
            "model_better": True,
            "n_weeks": 26,
        },
    ]
    headline = {
        "h1.model.poisson_deviance": 0.92,
        "h1.best_baseline.poisson_deviance": 1.13,
        "h1.oracle.poisson_deviance": 0.86,
        "h1.oracle_capture.poisson_deviance": 0.78,
        "h1.margin_police_only.pai_area_10.difference": 0.35,
        "h1.margin_police_only.pai_area_10.ci_low": 0.12,
        "h1.margin_police_only.pai_area_10.ci_high": 0.55,
    }
    results = {
        "summary": {
            "baselines": ["last_week"],
            "horizons": [1, 2],
            "headline": headline,
            "acceptance": {},
        },
        "table": table,
        "margins": margins,
        "feature_names": FEATURES,
        "ablations": ABLATIONS,
    }
    paths["results"].write_text(json.dumps(results))
    linkage = {
        "police": {
            "records_in": 5230,
            "linked": 5100,
            "quarantined": {"no_location": 127, "bad_date": 3},
            "match_rate": 0.9751,
            "linked_by": {"code": 5100},
        },
        "istv": {
            "records_in": 812,
            "linked": 790,
            "quarantined": {"no_match": 22},
            "match_rate": 0.9729,
            "linked_by": {"gazetteer_exact": 700, "gazetteer_fuzzy": 88, "nearest": 2},
        },
    }
    paths["linkage"].write_text(json.dumps(linkage))
    meta = {
        "feature_names": FEATURES,
        "dispersion": 1.3,
        "interval": [0.1, 0.9],
        "num_trees": 5,
        "params": {"num_leaves": 31, "learning_rate": 0.05},
        "run_id": run_id,
        "model_uri": model_uri,
    }
    paths["meta"].write_text(json.dumps(meta))
    report = gate_report(run_id, model_uri, policy_sha)
    paths["gate"].write_text(json.dumps(report))
    log_audit(run_id, report)
    write_png(root / "data/07_audit/plots/fairness.png", "fairness")
    write_png(root / "data/07_audit/plots/shap_summary.png", "shap")
    write_png(root / "data/06_backtest/plots/calibration.png", "calibration")
    return paths
