"""A real sqlite MLflow registry under a project root, filled as the pipeline fills it.

``build_layers`` writes the linked and panel layers of a root's raw files and
returns them with the features. ``publish_version`` logs a trained forecaster
as ``harmcast train`` does, registers it on a passed gate report
(``governance.registry``), lets the demo board approve it
(``governance.review``) and publishes a card hash the way ``harmcast card``
does, so ``serving.approval.resolve_approved`` accepts it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from mlflow import MlflowClient

from governance.policy import Policy
from governance.registry import TAG_CARD, client_for, register_candidate
from governance.review import approve
from training.config import Params, tracking_uri
from training.features import build_features
from training.forecaster import Forecaster
from training.link import LinkResult, link_sources, write_linked
from training.panel import build_panel, write_panel
from training.tracking import log_final_model

_TEMPLATE: list[Path] = []


def empty_registry(params: Params) -> str:
    """Create the root's ``mlruns/mlflow.db`` from a once-migrated empty database."""
    db = params.paths.root / params.tracking.store / "mlflow.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    if not _TEMPLATE:
        template = Path(tempfile.mkdtemp()) / "mlflow.db"
        MlflowClient(f"sqlite:///{template}").search_experiments()
        _TEMPLATE.append(template)
    if not db.exists():
        shutil.copyfile(_TEMPLATE[0], db)
    return tracking_uri(params)


def build_layers(params: Params):
    """Link the root's raw files and build the panel, writing both layers.

    Returns ``(linked, panel, features)``.
    """
    linked: LinkResult = link_sources(params.paths.resolve("raw"), params.sources, params.link)
    write_linked(linked, params.paths.resolve("linked"))
    panel = build_panel(linked.records, linked.areas)
    write_panel(panel, params.paths.resolve("panel"), areas=linked.areas,
                adjacency=linked.adjacency)  # fmt: skip
    features = build_features(panel, linked.areas, linked.adjacency, params.features)
    return linked, panel, features


def _gate_report(run_id: str, model_uri: str, policy: Policy) -> dict:
    check = {"name": "proxy_share", "category": "shap", "passed": True, "gated": True,
             "value": 0.1, "lower": None, "upper": 0.35}  # fmt: skip
    return {"run_id": run_id, "model_uri": model_uri, "policy_sha256": policy.sha256,
            "passed": True, "checks": [check]}  # fmt: skip


def publish_version(
    params: Params, policy: Policy, forecaster: Forecaster, example, *, approved: bool = True
) -> int:
    """Train-log, register and (optionally) approve ``forecaster``; return its version.

    The forecaster is saved into ``data/05_models`` first, as ``harmcast train`` does.
    """
    uri = empty_registry(params)
    models = params.paths.resolve("models")
    forecaster.save(models)
    meta = log_final_model(forecaster, params, example, models)
    audit_log = params.paths.root / "governance_audit.jsonl"
    name = params.tracking.registered_model
    version = register_candidate(
        run_id=meta["run_id"], model_uri=meta["model_uri"],
        gate_report=_gate_report(meta["run_id"], meta["model_uri"], policy), model_name=name,
        policy=policy, data_sha256="d" * 64, code_version="test", backtest_metrics={},
        tracking_uri=uri, audit_log=audit_log,
    ).version  # fmt: skip
    if not approved:
        return int(version)
    for reviewer in policy.board.demo_reviewers[: policy.board.quorum]:
        approve(model_name=name, version=version, reviewer=reviewer, rationale="tested",
                policy=policy, tracking_uri=uri, audit_log=audit_log)  # fmt: skip
    card = params.paths.resolve("model_cards") / name / f"v{version}" / "card.json"
    card.parent.mkdir(parents=True, exist_ok=True)
    card.write_text(json.dumps({"model": name, "version": int(version)}))
    sha = hashlib.sha256(card.read_bytes()).hexdigest()
    client_for(uri).set_model_version_tag(name, str(version), TAG_CARD, sha)
    return int(version)
