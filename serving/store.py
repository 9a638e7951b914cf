"""What the service starts from: the pinned BentoML model tag and its verified bundle.

The registry checks live in :mod:`serving.approval` and the BentoML model
(import, load) in :mod:`serving.bundle`; their public names are re-exported
here so that ``from serving.store import ...`` keeps working.
"""

from __future__ import annotations

import os
from pathlib import Path

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
    check_approval,
    check_registry,
    resolve_approved,
    sha256_file,
)
from serving.bundle import (
    BENTO_MODEL_NAME,
    MSG_NO_DISPERSION,
    MSG_SNAPSHOT_MODEL,
    Bundle,
    import_to_bentoml,
    load_bundle,
    load_forecaster,
)
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
    "MSG_NO_TAG",
]

MODEL_TAG_ENV = "HARMCAST_BENTO_MODEL"
MODEL_TAG_FILE_ENV = "HARMCAST_MODEL_TAG_FILE"
TRACKING_URI_ENV = "HARMCAST_TRACKING_URI"
# written by `harmcast bento import`, read at class level by serving/service.py and
# shipped inside the bento (bentofile include), hence beside the code, not under data/
MODEL_TAG_FILE = Path(__file__).with_name("model_tag.txt")

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
    from serving.snapshot import snapshot_sha256

    bundle = load_bundle(model_path)
    uri = os.environ.get(TRACKING_URI_ENV)
    snapshot = snapshot_sha256(model_path / "snapshot")
    return bundle, bool(uri) and verify_registry(uri, bundle, snapshot)


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
