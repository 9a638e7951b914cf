"""MLflow logging of the backtest and of the final model.

One MLflow run holds a model's whole record: ``harmcast backtest`` opens it
(params, headline metrics, results, plots, the linkage report, the data hash
and code version), and ``harmcast train`` logs the final booster into the same
run (the run id is read from the backtest's ``results.json``; without a
backtest, ``train`` opens a run of its own). ``data/05_models/model_meta.json``
records ``run_id`` and ``model_uri`` for the governance audit.

Tracking and registry are the sqlite store of ``training.config.tracking_uri``;
the experiment is created with ``training.config.artifact_location``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature

from training.config import Params, artifact_location, tracking_uri
from training.forecaster import META_FILE, STACK_FILE, Forecaster

__all__ = [
    "RUN_ID_KEY",
    "PIP_PACKAGES",
    "ensure_experiment",
    "sha256_file",
    "code_version",
    "pip_requirements",
    "log_backtest",
    "log_final_model",
    "INPUTS_KEY",
    "candidate_inputs",
]

RUN_ID_KEY = "mlflow_run_id"
#: Key of :func:`candidate_inputs` in ``results.json`` (summary) and ``model_meta.json``.
INPUTS_KEY = "inputs"
PIP_PACKAGES = ("lightgbm", "mlflow", "numpy", "pandas", "scipy")
_EXAMPLE_ROWS = 5


def ensure_experiment(params: Params) -> str:
    """Return the experiment id, creating it with the artifact location if needed."""
    client = MlflowClient(tracking_uri(params))
    found = client.get_experiment_by_name(params.tracking.experiment)
    if found is not None:
        return found.experiment_id
    Path(artifact_location(params)).mkdir(parents=True, exist_ok=True)
    return client.create_experiment(
        params.tracking.experiment, artifact_location=Path(artifact_location(params)).as_uri()
    )


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def code_version(root: str | Path = ".") -> str:
    """Return the git commit of ``root`` (``+dirty`` if changed), else the package version."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"harmcast=={metadata.version('harmcast')}"
    return f"{rev}+dirty" if dirty else rev


def candidate_inputs(params: Params, features_file: str | Path) -> dict:
    """Return what a model is made from: the features file's SHA-256 and model settings.

    The backtest and the final model each record this, so the governance audit
    can refuse a backtest made from other features or settings than the
    candidate it audits.
    """
    return {
        "features_sha256": sha256_file(features_file),
        "model_params": params.model.model_dump(mode="json"),
    }


def pip_requirements() -> list[str]:
    """Pinned requirements of the logged model (explicit: inference takes seconds)."""
    return [f"{name}=={metadata.version(name)}" for name in PIP_PACKAGES]


def _flat_params(params: Params) -> dict[str, str]:
    out = {}
    for section in ("features", "model", "backtest", "baselines"):
        for key, value in getattr(params, section).model_dump(mode="json").items():
            out[f"{section}.{key}"] = str(value)
    return out


def _headline_metrics(summary: dict) -> dict[str, float]:
    out = {}
    for key, value in summary.get("headline", {}).items():
        if isinstance(value, int | float) and np.isfinite(value):
            out[key] = float(value)
    return out


def _tags(params: Params, data_file: Path | None) -> dict[str, str]:
    tags = {"harmcast.stage": "candidate", "harmcast.code_version": code_version(params.paths.root)}
    if data_file is not None and data_file.is_file():
        tags["harmcast.data_sha256"] = sha256_file(data_file)
    return tags


def log_backtest(
    params: Params,
    summary: dict,
    backtest_dir: str | Path,
    *,
    data_file: str | Path | None = None,
    linkage_report: str | Path | None = None,
) -> str:
    """Open a run, log the backtest (params, headline metrics, files) and return its id.

    Parameters
    ----------
    params : all settings (logged flat, ``section.key``).
    summary : the backtest summary; its ``headline`` numbers become metrics.
    backtest_dir : the folder ``write_backtest`` wrote (results, table, plots).
    data_file : the panel file hashed into ``harmcast.data_sha256``.
    linkage_report : ``linkage_report.json``, logged when it exists.
    """
    backtest_dir = Path(backtest_dir)
    client = MlflowClient(tracking_uri(params))
    run = client.create_run(ensure_experiment(params), run_name="backtest")
    run_id = run.info.run_id
    data_path = Path(data_file) if data_file is not None else None
    for key, value in _tags(params, data_path).items():
        client.set_tag(run_id, key, value)
    for key, value in _flat_params(params).items():
        client.log_param(run_id, key, value)
    for key, value in _headline_metrics(summary).items():
        client.log_metric(run_id, key, value)
    for name in ("results.json", "table.md"):
        if (backtest_dir / name).is_file():
            client.log_artifact(run_id, str(backtest_dir / name), "backtest")
    if (backtest_dir / "plots").is_dir():
        client.log_artifacts(run_id, str(backtest_dir / "plots"), "backtest/plots")
    if linkage_report is not None and Path(linkage_report).is_file():
        client.log_artifact(run_id, str(linkage_report))
    client.set_terminated(run_id)
    return run_id


def log_final_model(
    forecaster: Forecaster,
    params: Params,
    example: pd.DataFrame,
    models_dir: str | Path,
    *,
    run_id: str | None = None,
    data_file: str | Path | None = None,
) -> dict:
    """Log the final booster (and ``model_meta.json``) to MLflow; record the run in the meta.

    Parameters
    ----------
    forecaster : the final model, already saved in ``models_dir``.
    params : all settings.
    example : feature rows; a few complete ones become the input example.
    models_dir : where ``model.lgb`` and ``model_meta.json`` are.
    run_id : the backtest's run to log into; None opens a new run.
    data_file : the panel file hashed into ``harmcast.data_sha256``.

    Returns
    -------
    dict
        The updated ``model_meta.json`` contents (with ``run_id``, ``model_uri``).
    """
    models_dir = Path(models_dir)
    uri = tracking_uri(params)
    mlflow.set_tracking_uri(uri)
    names = list(forecaster.feature_names)
    rows = example[names].dropna()
    rows = (rows if len(rows) else example[names].fillna(0.0)).head(_EXAMPLE_ROWS)
    rows = rows.astype(np.float64).reset_index(drop=True)
    signature = infer_signature(rows, forecaster.booster.predict(rows.to_numpy()))
    experiment_id = ensure_experiment(params)
    data_path = Path(data_file) if data_file is not None else None
    run_name = None if run_id else "train"
    with mlflow.start_run(run_id=run_id, experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.set_tags(_tags(params, data_path))
        if run_id is None:
            mlflow.log_params(_flat_params(params))
        mlflow.log_metric("model.dispersion", forecaster.dispersion)
        info = mlflow.lightgbm.log_model(
            forecaster.booster,
            name="model",
            signature=signature,
            input_example=rows,
            pip_requirements=pip_requirements(),
            metadata={"dispersion": forecaster.dispersion, "interval": list(forecaster.interval)},
        )
        if (models_dir / STACK_FILE).is_file():
            # beside model.lgb in the logged model: it is hashed with it and travels with it
            MlflowClient(uri).log_model_artifact(info.model_id, str(models_dir / STACK_FILE))
        meta = json.loads((models_dir / META_FILE).read_text())
        meta.update(
            run_id=run.info.run_id,
            model_uri=info.model_uri,
            tracking_uri=uri,
            experiment=params.tracking.experiment,
        )
        (models_dir / META_FILE).write_text(json.dumps(meta, indent=2))
        mlflow.log_artifact(str(models_dir / META_FILE))
    return meta
