"""Which model may be served: the registry check and the BentoML model store.

The MLflow side (tags, aliases) follows docs/architecture.md "MLflow
conventions"; this module is the only place serving reads them. A BentoML
model ``harmcast-violence:v<N>-<hash>`` holds everything the service needs:

- ``model/``: the registered MLflow model (``MLmodel``, ``model.lgb``...);
- ``card/card.json`` and ``card/card.html``: the published model card;
- ``approval.json``: the version's tags when it was imported;
- ``snapshot/``: ``snapshot.parquet`` and ``snapshot_meta.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from serving.snapshot import META_FILE, SNAPSHOT_FILE, Snapshot, read_snapshot
from training.errors import NotApproved

__all__ = [
    "ApprovedModel",
    "Bundle",
    "resolve_approved",
    "import_to_bentoml",
    "load_forecaster",
    "load_bundle",
    "startup_bundle",
    "verify_registry",
    "check_approval",
    "bento_model_tag",
    "write_model_tag",
    "sha256_file",
    "BENTO_MODEL_NAME",
    "MODEL_TAG_ENV",
    "TRACKING_URI_ENV",
    "MODEL_TAG_FILE",
    "TAG_APPROVAL",
    "TAG_GATE",
    "TAG_CARD",
    "PRODUCTION",
    "MSG_NO_PRODUCTION",
    "MSG_NOT_APPROVED",
    "MSG_GATE",
    "MSG_CARD_MISSING",
    "MSG_CARD_HASH",
    "MSG_NOT_PRODUCTION",
    "MSG_SNAPSHOT_MODEL",
    "MSG_NO_TAG",
]

BENTO_MODEL_NAME = "harmcast-violence"
MODEL_TAG_ENV = "HARMCAST_BENTO_MODEL"
TRACKING_URI_ENV = "HARMCAST_TRACKING_URI"
MODEL_TAG_FILE = Path(__file__).with_name("model_tag.txt")
TAG_APPROVAL = "harmcast.approval_status"
TAG_GATE = "harmcast.gate"
TAG_CARD = "harmcast.card_sha256"
PRODUCTION = "production"

MSG_NO_PRODUCTION = (
    "registered model {name!r} has no 'production' alias in {uri}: "
    "a board approval sets it (harmcast review approve)"
)
MSG_NOT_APPROVED = (
    "{name} version {version} is not approved for serving: "
    "harmcast.approval_status is {status!r}, needs 'approved'"
)
MSG_GATE = "{name} version {version} did not pass the gate: harmcast.gate is {gate!r}"
MSG_CARD_MISSING = "{name} version {version}: model card {path} not found"
MSG_CARD_HASH = (
    "{name} version {version}: model card {path} hashes to {actual} but "
    "harmcast.card_sha256 is {expected}; the card changed after approval"
)
MSG_NOT_PRODUCTION = (
    "{name} version {version} no longer holds the 'production' alias "
    "(production is version {current}); import and serve that version"
)
MSG_SNAPSHOT_MODEL = (
    "snapshot {path} was built with {snap_name} version {snap_version}, "
    "not {name} version {version}; rebuild it with `harmcast snapshot`"
)
MSG_NO_DISPERSION = (
    "{name} version {version}: no model_meta.json (the forecaster's dispersion) in the "
    "registered model, its run's artifacts, or a matching {models_dir}/model.lgb"
)
MSG_NO_TAG = (
    "no BentoML model tag: set " + MODEL_TAG_ENV + " or run `harmcast bento import` "
    "(it writes serving/model_tag.txt)"
)


@dataclass(frozen=True)
class ApprovedModel:
    """A registered version that may be served, and where its card lives."""

    name: str
    version: int
    tags: dict[str, str]
    source: str
    run_id: str | None
    card_dir: Path


@dataclass(frozen=True)
class Bundle:
    """What the service loads from a BentoML model."""

    approval: dict[str, Any]
    card: dict[str, Any]
    card_html: str
    card_sha256: str
    snapshot: Snapshot


def sha256_file(path: Path) -> str:
    """Return the SHA-256 hex digest of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_approval(tags: dict[str, str], *, name: str, version: int, card_json: Path) -> str:
    """Refuse a version unless approved, gate-passed and its card verifies.

    Returns
    -------
    str
        The card's SHA-256.

    Raises
    ------
    NotApproved
        With the first condition that fails.
    """
    _check_tags(tags, name=name, version=version)
    if not card_json.is_file():
        raise NotApproved(MSG_CARD_MISSING.format(name=name, version=version, path=card_json))
    actual = sha256_file(card_json)
    _check_card_hash(tags, actual, name=name, version=version, path=card_json)
    return actual


def _check_tags(tags: dict[str, str], *, name: str, version: int) -> None:
    status = tags.get(TAG_APPROVAL)
    if status != "approved":
        raise NotApproved(MSG_NOT_APPROVED.format(name=name, version=version, status=status))
    if tags.get(TAG_GATE) != "passed":
        raise NotApproved(MSG_GATE.format(name=name, version=version, gate=tags.get(TAG_GATE)))


def _check_card_hash(
    tags: dict[str, str], actual: str, *, name: str, version: int, path: Path | str
) -> None:
    if actual != tags.get(TAG_CARD):
        raise NotApproved(
            MSG_CARD_HASH.format(
                name=name, version=version, path=path, actual=actual, expected=tags.get(TAG_CARD)
            )
        )


def _client(tracking_uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def resolve_approved(
    tracking_uri: str, model_name: str, *, cards_root: Path = Path("model_cards")
) -> ApprovedModel:
    """Return the version holding ``production``, refusing one that may not be served.

    Raises
    ------
    NotApproved
        No ``production`` alias, or the version is not approved, not gate-passed,
        or its card on disk (``cards_root/<model>/v<N>/card.json``) does not hash
        to ``harmcast.card_sha256``.
    """
    from mlflow.exceptions import MlflowException

    if not _reachable(tracking_uri):
        raise NotApproved(MSG_NO_PRODUCTION.format(name=model_name, uri=tracking_uri))
    try:
        version = _client(tracking_uri).get_model_version_by_alias(model_name, PRODUCTION)
    except MlflowException as exc:
        raise NotApproved(MSG_NO_PRODUCTION.format(name=model_name, uri=tracking_uri)) from exc
    number = int(version.version)
    card_dir = cards_root / model_name / f"v{number}"
    tags = dict(version.tags)
    check_approval(tags, name=model_name, version=number, card_json=card_dir / "card.json")
    return ApprovedModel(
        name=model_name,
        version=number,
        tags=tags,
        source=version.source,
        run_id=version.run_id,
        card_dir=card_dir,
    )


def _download_model(approved: ApprovedModel, tracking_uri: str, dst: Path) -> Path:
    import mlflow

    return Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{approved.name}/{approved.version}",
            dst_path=str(dst),
            tracking_uri=tracking_uri,
            registry_uri=tracking_uri,
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
    """Return the approved version as a ``training.model.Forecaster``.

    The booster comes from the registry; its ``model_meta.json`` (dispersion,
    interval) from the registered model, its run, or ``models_dir`` when that
    holds the very same ``model.lgb``.

    Raises
    ------
    SchemaError
        When no matching ``model_meta.json`` is found.
    """
    from training.errors import SchemaError
    from training.model import Forecaster

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
        return Forecaster.load(staged)


def _bento_version(approved: ApprovedModel, snapshot: Snapshot, model_dir: Path) -> str:
    digest = hashlib.sha256()
    digest.update(approved.tags[TAG_CARD].encode())
    digest.update(snapshot.meta.sha256.encode())
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


def import_to_bentoml(
    approved: ApprovedModel,
    card_dir: Path,
    snapshot_dir: Path,
    *,
    tracking_uri: str,
    models_dir: Path = Path("data/05_models"),
) -> str:
    """Save the approved model, its card, approval record and snapshot to BentoML.

    Returns
    -------
    str
        The pinned tag ``harmcast-violence:v<N>-<hash>`` (the same content
        gives the same tag; importing it again is a no-op).
    """
    import bentoml

    card_json = card_dir / "card.json"
    card_sha = check_approval(
        approved.tags, name=approved.name, version=approved.version, card_json=card_json
    )
    snapshot = read_snapshot(snapshot_dir)
    _check_snapshot(approved, snapshot, snapshot_dir)
    with tempfile.TemporaryDirectory(prefix="harmcast-import-") as tmp:
        model_dir = _download_model(approved, tracking_uri, Path(tmp) / "dl")
        tag = f"{BENTO_MODEL_NAME}:{_bento_version(approved, snapshot, model_dir)}"
        try:
            return str(bentoml.models.get(tag).tag)
        except bentoml.exceptions.NotFound:
            pass
        approval = {**asdict(approved), "card_dir": str(approved.card_dir)}
        with bentoml.models.create(
            tag,
            labels={
                "registered_model": approved.name,
                "registered_version": str(approved.version),
                "approval_status": approved.tags[TAG_APPROVAL],
                "gate": approved.tags[TAG_GATE],
            },
            metadata={
                "card_sha256": card_sha,
                "snapshot_sha256": snapshot.meta.sha256,
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
            (root / "snapshot").mkdir()
            for name in (SNAPSHOT_FILE, META_FILE):
                shutil.copy2(snapshot_dir / name, root / "snapshot" / name)
            (root / "approval.json").write_text(json.dumps(approval, indent=2) + "\n")
    return tag


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


def _reachable(tracking_uri: str) -> bool:
    # MLflow would create an empty sqlite database rather than fail
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri.removeprefix("sqlite:///")).is_file()
    try:
        _client(tracking_uri).search_registered_models(max_results=1)
    except Exception:  # noqa: BLE001 - any failure to connect means "not reachable"
        return False
    return True


def verify_registry(tracking_uri: str, bundle: Bundle) -> bool:
    """Check the registry still approves the bundle's version and gives it ``production``.

    Returns
    -------
    bool
        False when the registry cannot be reached (nothing was checked).

    Raises
    ------
    NotApproved
        The version lost ``production`` (a rollback) or its approval, or the
        registry's card hash differs from the stored card's.
    """
    if not _reachable(tracking_uri):
        return False
    from mlflow.exceptions import MlflowException

    name, version = bundle.approval["name"], int(bundle.approval["version"])
    try:
        current = _client(tracking_uri).get_model_version_by_alias(name, PRODUCTION)
    except MlflowException as exc:
        raise NotApproved(MSG_NO_PRODUCTION.format(name=name, uri=tracking_uri)) from exc
    if int(current.version) != version:
        raise NotApproved(
            MSG_NOT_PRODUCTION.format(name=name, version=version, current=current.version)
        )
    tags = dict(current.tags)
    _check_tags(tags, name=name, version=version)
    _check_card_hash(
        tags, bundle.card_sha256, name=name, version=version, path="card/card.json (served)"
    )
    return True


def startup_bundle(model_path: Path) -> tuple[Bundle, bool]:
    """Load and verify a bundle as the service starts.

    Returns
    -------
    tuple
        The bundle, and whether the registry (``HARMCAST_TRACKING_URI``) was checked.

    Raises
    ------
    NotApproved
        When :func:`load_bundle` or :func:`verify_registry` refuses.
    """
    bundle = load_bundle(model_path)
    uri = os.environ.get(TRACKING_URI_ENV)
    return bundle, bool(uri) and verify_registry(uri, bundle)


def bento_model_tag() -> str:
    """Return the pinned BentoML model tag (``HARMCAST_BENTO_MODEL`` or model_tag.txt)."""
    tag = os.environ.get(MODEL_TAG_ENV, "").strip()
    if not tag and MODEL_TAG_FILE.is_file():
        tag = MODEL_TAG_FILE.read_text().strip()
    if not tag or tag.endswith(":latest") or ":" not in tag:
        raise NotApproved(MSG_NO_TAG)
    return tag


def write_model_tag(tag: str, path: Path = MODEL_TAG_FILE) -> Path:
    """Record the imported tag for ``bentoml build`` and ``bentoml serve``."""
    path.write_text(tag + "\n")
    return path
