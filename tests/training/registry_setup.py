"""A real sqlite MLflow registry under a project root, filled as the pipeline fills it.

``build_layers`` writes the linked and panel layers of a root's raw files and
returns them with the features. ``publish_version`` logs a trained forecaster
as ``harmcast train`` does, audits it (a gate report with its subject, logged
to the run), registers it (``governance.registry``), has the root's sealed board sign its approval
(``governance.review``) and publishes its card the way ``harmcast card``
records it, so ``governance.servable.check_servable`` accepts it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from mlflow import MlflowClient

from governance.policy import Policy
from training.config import Params, tracking_uri
from training.features import build_features
from training.forecaster import Forecaster
from training.link.linker import LinkResult, link_sources, write_linked
from training.near_repeat import read_daily_events
from training.panel import COVERAGE_FILE, build_panel, write_panel
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
    # as `harmcast features` does: the near-repeat features from the linked records
    daily = read_daily_events(
        params.paths.resolve("linked"), params.paths.resolve("panel") / COVERAGE_FILE
    )
    features = build_features(panel, linked.areas, linked.adjacency, params.features, daily)
    return linked, panel, features


def governed_project(params: Params):
    """The root's sealed board (sealed on first use, members' keys kept under the root)."""
    from governance.board import is_sealed, policy_in_force
    from governance.provenance import Governance
    from governance.signing import read_private_key, write_private_key
    from tests.governance.board_helpers import seal_board
    from tests.governance.governed import Project

    root, uri = params.paths.root, empty_registry(params)
    keys_dir = root / ".harmcast" / "keys" / "test"
    if not is_sealed(root):
        keys, _ = seal_board(root, tracking_uri=uri, model_name=params.tracking.registered_model)
        for member, key in keys.items():
            write_private_key(key, keys_dir / f"{member}.key")
    keys = {p.stem: read_private_key(p) for p in keys_dir.glob("*.key")}
    gov = Governance.from_params(params)
    return Project(root, uri, gov, keys, policy_in_force(root))


def publish_version(
    params: Params, policy: Policy, forecaster: Forecaster, example, *, approved: bool = True
) -> int:
    """Train-log, audit, register and (optionally) approve and publish ``forecaster``.

    The forecaster is saved into ``data/05_models`` first, as ``harmcast train``
    does; the root's board (sealed on first use) signs the approvals.
    ``policy`` is kept for the callers; the sealed policy governs.
    """
    from tests.governance.governed import (
        approve_by,
        audited_report,
        draft_card,
        publish,
        register_logged,
    )

    project = governed_project(params)
    models = params.paths.resolve("models")
    forecaster.save(models)
    meta = log_final_model(forecaster, params, example, models)
    run_id, model_uri = meta["run_id"], meta["model_uri"]
    report = audited_report(project, run_id, model_uri)
    version = register_logged(project, run_id, model_uri, report)
    draft_card(project, version)
    if not approved:
        return int(version)
    approve_by(project, version)
    publish(project, version)
    return int(version)
