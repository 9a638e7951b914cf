"""The BentoML model that carries an approved version to the service.

A BentoML model ``harmcast-violence:v<N>-<hash>`` holds everything the service needs:

- ``model/``: the registered MLflow model (``MLmodel``, ``model.lgb``...);
- ``card/card.json`` and ``card/card.html``: the published model card;
- ``approval.json``: the version's tags when it was imported;
- ``snapshot/``: the snapshot directory (``snapshot.parquet``, ``snapshot_meta.json``...);
  its :func:`serving.snapshot.snapshot_sha256` is the model's ``snapshot_sha256`` metadata.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from serving.approval import (
    TAG_APPROVAL,
    TAG_CARD,
    TAG_GATE,
    ApprovedModel,
    check_approval,
    sha256_file,
)
from serving.integrity import METADATA_SNAPSHOT
from serving.snapshot import META_FILE, Snapshot, read_snapshot, snapshot_sha256
from training.errors import NotApproved

__all__ = [
    "Bundle",
    "import_to_bentoml",
    "load_forecaster",
    "load_bundle",
    "BENTO_MODEL_NAME",
    "MSG_SNAPSHOT_MODEL",
    "MSG_NO_DISPERSION",
    "MSG_SNAPSHOT_COPY",
]

BENTO_MODEL_NAME = "harmcast-violence"

MSG_SNAPSHOT_MODEL = (
    "snapshot {path} was built with {snap_name} version {snap_version}, "
    "not {name} version {version}; rebuild it with `harmcast snapshot`"
)
MSG_SNAPSHOT_COPY = (
    "snapshot {path} hashes to {actual}, not {expected}: it changed while it was being "
    "imported, or before (the registry tag harmcast.snapshot_sha256); import it again"
)
MSG_NO_DISPERSION = (
    "{name} version {version}: no model_meta.json (the forecaster's dispersion) in the "
    "registered model, its run's artifacts, or a matching {models_dir}/model.lgb"
)


@dataclass(frozen=True)
class Bundle:
    """What the service loads from a BentoML model."""

    approval: dict[str, Any]
    card: dict[str, Any]
    card_html: str
    card_sha256: str
    snapshot: Snapshot


def _download_model(approved: ApprovedModel, tracking_uri: str, dst: Path) -> Path:
    import mlflow
    from mlflow import MlflowClient

    # Resolve the version's own storage location with an explicit client: a
    # ``models:/`` URI is resolved in part through MLflow's process-wide URIs,
    # which may point at another registry.
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    location = client.get_model_version_download_uri(approved.name, str(approved.version))
    return Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=location, dst_path=str(dst), tracking_uri=tracking_uri
        )
    )


def _find_meta(approved: ApprovedModel, model_dir: Path, tracking_uri: str, models_dir: Path):
    import mlflow

    if (model_dir / "model_meta.json").is_file():
        return model_dir / "model_meta.json"
    if approved.run_id:
        try:
            return Path(
                mlflow.artifacts.download_artifacts(
                    run_id=approved.run_id,
                    artifact_path="model_meta.json",
                    dst_path=str(model_dir.parent),
                    tracking_uri=tracking_uri,
                )
            )
        except Exception:  # noqa: BLE001 - absent artifact: try the local model next
            pass
    local = models_dir / "model.lgb"
    same = local.is_file() and sha256_file(local) == sha256_file(model_dir / "model.lgb")
    if same and (models_dir / "model_meta.json").is_file():
        return models_dir / "model_meta.json"
    return None


def load_forecaster(
    approved: ApprovedModel, *, tracking_uri: str, models_dir: Path = Path("data/05_models")
) -> Any:
    """Return the approved version as a ``training.forecaster.Forecaster``.

    The booster comes from the registry; its ``model_meta.json`` (dispersion,
    interval) from the registered model, its run, or ``models_dir`` when that
    holds the very same ``model.lgb``.

    Raises
    ------
    SchemaError
        When no matching ``model_meta.json`` is found.
    """
    from training.errors import SchemaError
    from training.forecaster import Forecaster

    with tempfile.TemporaryDirectory(prefix="harmcast-model-") as tmp:
        model_dir = _download_model(approved, tracking_uri, Path(tmp) / "dl")
        meta_path = _find_meta(approved, model_dir, tracking_uri, models_dir)
        if meta_path is None:
            message = MSG_NO_DISPERSION.format(
                name=approved.name, version=approved.version, models_dir=models_dir
            )
            raise SchemaError(f"models:/{approved.name}/{approved.version}", message)
        staged = Path(tmp) / "forecaster"
        staged.mkdir()
        shutil.copy2(model_dir / "model.lgb", staged / "model.lgb")
        shutil.copy2(meta_path, staged / "model_meta.json")
        if (model_dir / "stack.json").is_file():  # the served-forecast choice
            shutil.copy2(model_dir / "stack.json", staged / "stack.json")
        return Forecaster.load(staged)


def _bento_version(approved: ApprovedModel, snapshot_digest: str, model_dir: Path) -> str:
    digest = hashlib.sha256()
    digest.update(approved.tags[TAG_CARD].encode())
    digest.update(snapshot_digest.encode())
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        digest.update(path.relative_to(model_dir).as_posix().encode())
        digest.update(sha256_file(path).encode())
    return f"v{approved.version}-{digest.hexdigest()[:10]}"


def _check_snapshot(approved: ApprovedModel, snapshot: Snapshot, snapshot_dir: Path) -> None:
    meta = snapshot.meta
    if meta.model_name != approved.name or meta.model_version != str(approved.version):
        raise NotApproved(
            MSG_SNAPSHOT_MODEL.format(
                path=snapshot_dir / META_FILE,
                snap_name=meta.model_name,
                snap_version=meta.model_version,
                name=approved.name,
                version=approved.version,
            )
        )


def _check_copy(path: Path, actual: str, expected: str) -> None:
    if actual != expected:
        raise NotApproved(MSG_SNAPSHOT_COPY.format(path=path, actual=actual, expected=expected))


def import_to_bentoml(
    approved: ApprovedModel,
    card_dir: Path,
    snapshot_dir: Path,
    *,
    tracking_uri: str,
    models_dir: Path = Path("data/05_models"),
    snapshot_digest: str | None = None,
    store: Path | None = None,
) -> str:
    """Save the approved model, its card, approval record and snapshot to BentoML.

    Parameters
    ----------
    approved : the version to import (:func:`serving.approval.resolve_approved`).
    card_dir : its published card.
    snapshot_dir : the snapshot built from it; copied whole.
    tracking_uri : the registry.
    models_dir : where a local ``model_meta.json`` may be found.
    snapshot_digest : the snapshot hash recorded at ``harmcast snapshot``; the
        folder and its copy in the store must hash to it (default: the folder's own).
    store : the BentoML home to import into (its ``models/``); default the one
        BentoML resolved in this process (``$BENTOML_HOME`` or ``~/bentoml``).

    Returns
    -------
    str
        The pinned tag ``harmcast-violence:v<N>-<hash>`` (the same content
        gives the same tag; importing it again is a no-op).

    Raises
    ------
    NotApproved
        The version may not be served, the snapshot is of another version, or
        the snapshot (or its copy) does not hash to ``snapshot_digest``.
    """
    import bentoml

    card_json = card_dir / "card.json"
    card_sha = check_approval(
        approved.tags, name=approved.name, version=approved.version, card_json=card_json
    )
    snapshot = read_snapshot(snapshot_dir)
    _check_snapshot(approved, snapshot, snapshot_dir)
    digest = snapshot_sha256(snapshot_dir)
    expected = snapshot_digest or digest
    _check_copy(snapshot_dir, digest, expected)
    with tempfile.TemporaryDirectory(prefix="harmcast-import-") as tmp:
        model_dir = _download_model(approved, tracking_uri, Path(tmp) / "dl")
        tag = f"{BENTO_MODEL_NAME}:{_bento_version(approved, digest, model_dir)}"
        target = _model_store(store)
        try:
            return str(bentoml.models.get(tag, **target).tag)
        except bentoml.exceptions.NotFound:
            pass
        approval = {**asdict(approved), "card_dir": str(approved.card_dir)}
        with bentoml.models.create(
            tag,
            **target,
            labels={
                "registered_model": approved.name,
                "registered_version": str(approved.version),
                "approval_status": approved.tags[TAG_APPROVAL],
                "gate": approved.tags[TAG_GATE],
            },
            metadata={
                "card_sha256": card_sha,
                METADATA_SNAPSHOT: digest,
                "origin_week": snapshot.meta.origin_week,
                "run_id": approved.run_id or "",
            },
        ) as model:
            root = Path(model.path)
            shutil.copytree(model_dir, root / "model")
            meta = _find_meta(approved, model_dir, tracking_uri, models_dir)
            if meta is not None and not (root / "model" / "model_meta.json").exists():
                shutil.copy2(meta, root / "model" / "model_meta.json")
            (root / "card").mkdir()
            for name in ("card.json", "card.html", "card.md"):
                if (card_dir / name).is_file():
                    shutil.copy2(card_dir / name, root / "card" / name)
            shutil.copytree(snapshot_dir, root / "snapshot")
            _check_copy(root / "snapshot", snapshot_sha256(root / "snapshot"), expected)
            (root / "approval.json").write_text(json.dumps(approval, indent=2) + "\n")
    return tag


def _model_store(store: Path | None) -> dict:
    """Name the model store explicitly: BentoML resolves its home once per process."""
    if store is None:
        return {}
    from bentoml._internal.models.model import ModelStore

    (store / "models").mkdir(parents=True, exist_ok=True)
    return {"_model_store": ModelStore(store / "models")}


def load_bundle(model_path: Path) -> Bundle:
    """Load a BentoML model's files, refusing them unless the stored approval verifies.

    Raises
    ------
    NotApproved
        The stored approval record is not approved/gate-passed, or the stored
        card does not hash to the recorded ``harmcast.card_sha256``.
    """
    approval = json.loads((model_path / "approval.json").read_text())
    card_json = model_path / "card" / "card.json"
    card_sha = check_approval(
        approval["tags"], name=approval["name"], version=approval["version"], card_json=card_json
    )
    html_path = model_path / "card" / "card.html"
    return Bundle(
        approval=approval,
        card=json.loads(card_json.read_text()),
        card_html=html_path.read_text() if html_path.is_file() else "",
        card_sha256=card_sha,
        snapshot=read_snapshot(model_path / "snapshot"),
    )
