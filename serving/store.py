"""What the service starts from: the pinned BentoML model tag and its verified bundle.

The registry checks live in :mod:`serving.approval` and the BentoML model
(import, load) in :mod:`serving.bundle`; their public names are re-exported
here so that ``from serving.store import ...`` keeps working.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from serving.approval import (
    MSG_CARD_HASH,
    MSG_CARD_MISSING,
    MSG_GATE,
    MSG_NO_PRODUCTION,
    MSG_NOT_APPROVED,
    MSG_NOT_PRODUCTION,
    PRODUCTION,
    TAG_APPROVAL,
    TAG_CARD,
    TAG_GATE,
    ApprovedModel,
    _client,
    _reachable,
    check_approval,
    check_registry,
    resolve_approved,
    sha256_file,
)
from serving.bundle import (
    BENTO_MODEL_NAME,
    MSG_NO_DISPERSION,
    MSG_SNAPSHOT_COPY,
    MSG_SNAPSHOT_MODEL,
    Bundle,
    import_to_bentoml,
    load_bundle,
    load_forecaster,
)
from serving.integrity import METADATA_SNAPSHOT, registry_snapshot_sha256, verify_snapshot
from serving.snapshot import snapshot_sha256
from training.errors import HarmcastError, NotApproved

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
    "model_tag_file",
    "write_model_tag",
    "sha256_file",
    "BENTO_MODEL_NAME",
    "MODEL_TAG_ENV",
    "MODEL_TAG_FILE_ENV",
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
    "MSG_NO_DISPERSION",
    "MSG_SNAPSHOT_COPY",
    "MSG_NO_TAG",
    "MSG_NOT_IN_REGISTRY",
    "store_metadata",
    "StartupRefused",
    "refusing_to_start",
    "MSG_REFUSED",
]

MODEL_TAG_ENV = "HARMCAST_BENTO_MODEL"
MODEL_TAG_FILE_ENV = "HARMCAST_MODEL_TAG_FILE"
TRACKING_URI_ENV = "HARMCAST_TRACKING_URI"
# written by `harmcast bento import`, read at class level by serving/service.py and
# shipped inside the bento (bentofile include), hence beside the code, not under data/
MODEL_TAG_FILE = Path(__file__).with_name("model_tag.txt")

MSG_REFUSED = "harmcast-forecast refused to start: {kind}: {cause}"
MSG_NOT_IN_REGISTRY = "{name} version {version} is not in the registry {uri}"
MSG_NO_TAG = (
    "no BentoML model tag: set " + MODEL_TAG_ENV + " or run `harmcast bento import` "
    "(it writes serving/model_tag.txt)"
)


def verify_registry(tracking_uri: str, bundle: Bundle, snapshot_sha256: str | None = None) -> bool:
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
    return check_registry(
        tracking_uri,
        name=bundle.approval["name"],
        version=int(bundle.approval["version"]),
        card_sha256=bundle.card_sha256,
        snapshot_sha256=snapshot_sha256,
    )


def store_metadata(model_path: Path) -> dict[str, Any]:
    """Return the BentoML model's metadata (``model.yaml`` beside its files)."""
    import yaml

    info = model_path / "model.yaml"
    return (yaml.safe_load(info.read_text()) or {}).get("metadata") or {} if info.is_file() else {}


def startup_bundle(model_path: Path) -> tuple[Bundle, bool]:
    """Verify and load a bundle as the service starts.

    The snapshot is checked first, against the registry's
    ``harmcast.snapshot_sha256`` when ``HARMCAST_TRACKING_URI`` is reachable
    (and the store's metadata must agree with it), else against the store's
    metadata (:func:`serving.integrity.verify_snapshot`); then the stored
    approval and card, then the registry's approval and ``production`` alias.

    Returns
    -------
    tuple
        The bundle, and whether the registry (``HARMCAST_TRACKING_URI``) was checked.

    Raises
    ------
    NotApproved
        When the snapshot, :func:`load_bundle` or :func:`verify_registry` refuses.
    """
    import json

    approval = json.loads((model_path / "approval.json").read_text())
    name, version = approval["name"], int(approval["version"])
    uri = os.environ.get(TRACKING_URI_ENV)
    reachable = bool(uri) and _reachable(uri)
    verify_snapshot(
        model_path / "snapshot",
        name=name,
        version=version,
        registry=_registry_snapshot(uri, name, version) if reachable else None,
        store=store_metadata(model_path).get(METADATA_SNAPSHOT),
        registry_reachable=reachable,
    )
    bundle = load_bundle(model_path)
    snapshot = snapshot_sha256(model_path / "snapshot")
    return bundle, reachable and verify_registry(uri, bundle, snapshot)


def _registry_snapshot(uri: str, name: str, version: int) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return registry_snapshot_sha256(_client(uri), name, version)
    except MlflowException as exc:
        raise NotApproved(MSG_NOT_IN_REGISTRY.format(name=name, version=version, uri=uri)) from exc


def model_tag_file() -> Path:
    """Return where the pinned tag is kept (``HARMCAST_MODEL_TAG_FILE`` or model_tag.txt)."""
    return Path(os.environ.get(MODEL_TAG_FILE_ENV, "").strip() or MODEL_TAG_FILE)


def bento_model_tag() -> str:
    """Return the pinned BentoML model tag (``HARMCAST_BENTO_MODEL`` or the tag file)."""
    tag = os.environ.get(MODEL_TAG_ENV, "").strip()
    path = model_tag_file()
    if not tag and path.is_file():
        tag = path.read_text().strip()
    if not tag or tag.endswith(":latest") or ":" not in tag:
        raise NotApproved(MSG_NO_TAG)
    return tag


def write_model_tag(tag: str, path: Path | None = None) -> Path:
    """Record the imported tag for ``bentoml build`` and ``bentoml serve``."""
    path = path or model_tag_file()
    path.write_text(tag + "\n")
    return path


class StartupRefused(HarmcastError, RuntimeError):
    """The service may not start; the message names the cause.

    Not a ``ValueError``: serving a bento by tag, BentoML's loader replaces a
    ``ValueError`` raised while importing the service with its own
    "No module named ..." (it reads it as "not a bento tag").
    """


@contextmanager
def refusing_to_start() -> Iterator[None]:
    """Print any start-up refusal on stderr, and re-raise a ``ValueError`` as ``StartupRefused``.

    ``NotApproved`` (a ``PermissionError``) passes through unchanged; every
    other ``ValueError`` (``SchemaError``, ``ConfigError``, a JSON or pydantic
    error) becomes :class:`StartupRefused` with the same message, so each of
    ``bentoml serve module:Service``, ``bentoml serve <bento dir>`` and
    ``bentoml serve <bento tag>`` names the real cause.
    """
    try:
        yield
    except Exception as exc:
        refused = isinstance(exc, HarmcastError | ValueError | OSError)
        if refused:
            print(MSG_REFUSED.format(kind=type(exc).__name__, cause=exc), file=sys.stderr)
        if isinstance(exc, ValueError):
            raise StartupRefused(MSG_REFUSED.format(kind=type(exc).__name__, cause=exc)) from exc
        raise
