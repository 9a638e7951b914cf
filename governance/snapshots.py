"""Record which snapshot a registered version is served with.

``harmcast snapshot`` and ``harmcast bento import`` record the snapshot
directory's SHA-256 on the registry version (``harmcast.snapshot_sha256``) and
in the audit log, outside the BentoML store that the service reads: the store
can rewrite its own files, not these. Tags are a cache of the evidence; the
audit log entry is the evidence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from governance.registry import SYSTEM_ACTOR, client_for, record_action
from training.errors import NotApproved

__all__ = [
    "TAG_SNAPSHOT",
    "ACTION_SNAPSHOT",
    "ACTION_BENTO_IMPORT",
    "recorded_snapshot_sha256",
    "record_snapshot",
    "check_recorded",
    "MSG_SNAPSHOT_CHANGED",
]

TAG_SNAPSHOT = "harmcast.snapshot_sha256"
ACTION_SNAPSHOT = "snapshot"
ACTION_BENTO_IMPORT = "bento_import"

MSG_SNAPSHOT_CHANGED = (
    "{name} version {version}: snapshot {path} hashes to {actual} but the registry tag "
    + TAG_SNAPSHOT
    + " records {expected} (written by `harmcast snapshot`); the snapshot changed "
    "after it was recorded: run `harmcast snapshot` again"
)


def recorded_snapshot_sha256(tracking_uri: str, name: str, version: int | str) -> str | None:
    """Return the snapshot hash recorded on a registry version (None when absent)."""
    tags = client_for(tracking_uri).get_model_version(name, str(version)).tags
    return tags.get(TAG_SNAPSHOT) or None


def record_snapshot(
    tracking_uri: str,
    log_path: str | Path,
    *,
    name: str,
    version: int | str,
    snapshot_sha256: str,
    action: str,
    details: dict[str, Any],
) -> dict[str, Any]:
    """Tag the version with the snapshot's hash and append an audit entry.

    Parameters
    ----------
    tracking_uri : the registry.
    log_path : the audit log.
    name, version : the registered model version the snapshot forecasts with.
    snapshot_sha256 : ``serving.snapshot.snapshot_sha256`` of the directory.
    action : ``ACTION_SNAPSHOT`` or ``ACTION_BENTO_IMPORT``.
    details : what else to keep (the folder, the BentoML tag); the hash is added.

    Returns
    -------
    dict
        The audit entry.
    """
    client = client_for(tracking_uri)
    client.set_model_version_tag(name, str(version), TAG_SNAPSHOT, snapshot_sha256)
    return record_action(
        client,
        log_path,
        actor=SYSTEM_ACTOR,
        action=action,
        model=name,
        version=version,
        details={**details, "snapshot_sha256": snapshot_sha256},
    )


def check_recorded(
    tracking_uri: str, *, name: str, version: int | str, path: Path, actual: str
) -> None:
    """Refuse a snapshot folder whose hash differs from the one ``harmcast snapshot`` recorded.

    A version without a recorded hash passes (nothing to compare with yet).

    Raises
    ------
    NotApproved
        When the registry records another hash.
    """
    expected = recorded_snapshot_sha256(tracking_uri, name, version)
    if expected is not None and expected != actual:
        raise NotApproved(
            MSG_SNAPSHOT_CHANGED.format(
                name=name, version=version, path=path, actual=actual, expected=expected
            )
        )
