"""Which registered version may be served: ``production``, and servable by its evidence.

The MLflow side (aliases) follows docs/architecture.md "MLflow conventions";
this module is the only place serving reads it. Whether the version may be
served is decided by ``governance.servable.check_servable`` alone (signed
decisions, gate report, card and snapshot hashes), never by the version's tags.
The project root whose board, audit log and cards decide is ``HARMCAST_ROOT``,
else the folder holding the registry's ``mlruns/``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from governance.provenance import TAG_CARD, TAG_GATE, TAG_STATUS
from training.errors import NotApproved

__all__ = [
    "ApprovedModel",
    "resolve_approved",
    "check_approval",
    "check_registry",
    "sha256_file",
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
]

# the registry tags, defined once in governance.provenance (shipped in the bento)
TAG_APPROVAL = TAG_STATUS
PRODUCTION = "production"
ROOT_ENV = "HARMCAST_ROOT"

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


@dataclass(frozen=True)
class ApprovedModel:
    """A registered version that may be served, and where its card lives."""

    name: str
    version: int
    tags: dict[str, str]
    source: str
    run_id: str | None
    card_dir: Path


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


def governance_root(tracking_uri: str, root: Path | None = None) -> Path:
    """Return the project root whose governance evidence decides (see the module doc)."""
    if root is not None:
        return Path(root)
    if os.environ.get(ROOT_ENV, "").strip():
        return Path(os.environ[ROOT_ENV].strip())
    return Path(tracking_uri.removeprefix("sqlite:///")).parent.parent


def check_servable(
    tracking_uri: str,
    *,
    name: str,
    version: int,
    root: Path | None = None,
    cards_root: Path | None = None,
    **evidence: Any,
) -> None:
    """Refuse a version that ``governance.servable.check_servable`` does not find servable."""
    from governance.provenance import Governance
    from governance.servable import check_servable as _check

    gov = Governance.for_root(
        governance_root(tracking_uri, root), tracking_uri=tracking_uri, cards_root=cards_root
    )
    _check(gov, name, version, **evidence)


def _client(tracking_uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def resolve_approved(
    tracking_uri: str,
    model_name: str,
    *,
    cards_root: Path = Path("model_cards"),
    root: Path | None = None,
    snapshot_dir: Path | None = None,
) -> ApprovedModel:
    """Return the version holding ``production``, refusing one that may not be served.

    Parameters
    ----------
    snapshot_dir : when given, its ``snapshot_sha256`` must be one recorded for
        the version when a snapshot was made.

    Raises
    ------
    NotApproved
        No ``production`` alias, or ``check_servable`` refuses the version.
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
    snapshot = None
    if snapshot_dir is not None:
        from serving.snapshot import snapshot_sha256

        snapshot = snapshot_sha256(snapshot_dir)
    check_servable(tracking_uri, name=model_name, version=number, root=root,
                   cards_root=cards_root, snapshot_sha256=snapshot)  # fmt: skip
    return ApprovedModel(
        name=model_name,
        version=number,
        tags=tags,
        source=version.source,
        run_id=version.run_id,
        card_dir=card_dir,
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


def check_registry(
    tracking_uri: str,
    *,
    name: str,
    version: int,
    card_sha256: str,
    snapshot_sha256: str | None = None,
    root: Path | None = None,
) -> bool:
    """Check ``name`` ``version`` still holds ``production`` and is servable by its evidence.

    Returns
    -------
    bool
        False when the registry cannot be reached (nothing was checked).

    Raises
    ------
    NotApproved
        The version lost ``production``, or ``check_servable`` refuses it with
        the served card (``card_sha256``) and snapshot (``snapshot_sha256``).
    """
    if not _reachable(tracking_uri):
        return False
    from mlflow.exceptions import MlflowException

    try:
        current = _client(tracking_uri).get_model_version_by_alias(name, PRODUCTION)
    except MlflowException as exc:
        raise NotApproved(MSG_NO_PRODUCTION.format(name=name, uri=tracking_uri)) from exc
    if int(current.version) != version:
        raise NotApproved(
            MSG_NOT_PRODUCTION.format(name=name, version=version, current=current.version)
        )
    check_servable(tracking_uri, name=name, version=version, root=root,
                   card_sha256=card_sha256, snapshot_sha256=snapshot_sha256)  # fmt: skip
    return True
