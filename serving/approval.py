"""Which registered version may be served: the MLflow registry checks.

The MLflow side (tags, aliases) follows docs/architecture.md "MLflow
conventions"; this module is the only place serving reads them. A version may
be served only when it is approved, gate-passed, holds ``production`` and its
card on disk hashes to ``harmcast.card_sha256``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

# The same names as governance.registry's TAG_* constants (a test holds them
# equal); repeated here so the bento ships without the governance package.
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


def _reachable(tracking_uri: str) -> bool:
    # MLflow would create an empty sqlite database rather than fail
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri.removeprefix("sqlite:///")).is_file()
    try:
        _client(tracking_uri).search_registered_models(max_results=1)
    except Exception:  # noqa: BLE001 - any failure to connect means "not reachable"
        return False
    return True


def check_registry(tracking_uri: str, *, name: str, version: int, card_sha256: str) -> bool:
    """Check the registry still approves ``name`` ``version`` and gives it ``production``.

    Returns
    -------
    bool
        False when the registry cannot be reached (nothing was checked).

    Raises
    ------
    NotApproved
        The version lost ``production`` (a rollback) or its approval, or the
        registry's card hash differs from ``card_sha256`` (the served card's).
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
    tags = dict(current.tags)
    _check_tags(tags, name=name, version=version)
    _check_card_hash(tags, card_sha256, name=name, version=version, path="card/card.json (served)")
    return True
