"""The start-up check that the snapshot in the BentoML store is the one recorded.

``harmcast snapshot`` records the snapshot directory's hash
(:func:`serving.snapshot.snapshot_sha256`) on the registry version
(``harmcast.snapshot_sha256``) and in the audit log; ``harmcast bento import``
records it again in the BentoML model's metadata. The store can rewrite its
own files and metadata, not the registry: so the registry decides when it is
reachable, the store's metadata only when it is not, and a registry and store
that disagree refuse to serve. ``snapshot_meta.json`` carries the hash too but
is never trusted, since it sits beside the files it describes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from governance.provenance import TAG_SNAPSHOT
from serving.snapshot import META_FILE, snapshot_sha256
from training.errors import NotApproved

__all__ = [
    "TAG_SNAPSHOT",
    "METADATA_SNAPSHOT",
    "REGISTRY_SOURCE",
    "STORE_SOURCE",
    "verify_snapshot",
    "registry_snapshot_sha256",
    "MSG_SNAPSHOT_HASH",
    "MSG_SNAPSHOT_UNRECORDED",
    "MSG_SNAPSHOT_DISAGREE",
    "MSG_SNAPSHOT_MISSING",
]

#: the BentoML model's metadata key written by ``harmcast bento import``
METADATA_SNAPSHOT = "snapshot_sha256"
REGISTRY_SOURCE = "the registry tag " + TAG_SNAPSHOT
STORE_SOURCE = "the BentoML model's metadata " + METADATA_SNAPSHOT

MSG_SNAPSHOT_MISSING = "{name} version {version}: snapshot {path} not found in the BentoML model"
MSG_SNAPSHOT_HASH = (
    "{name} version {version}: snapshot {path} (files {files}) hashes to {actual} but "
    "{source} records {expected}; the snapshot changed after it was recorded"
)
MSG_SNAPSHOT_UNRECORDED = (
    "{name} version {version}: {source} records no snapshot hash; "
    "run `harmcast snapshot` and `harmcast bento import` again"
)
MSG_SNAPSHOT_DISAGREE = (
    "{name} version {version}: the registry records snapshot sha256 {registry} "
    "({tag}) but the BentoML model's metadata records {store}; the two must agree: "
    "run `harmcast snapshot` and `harmcast bento import` again"
)


def _files(directory: Path) -> list[str]:
    names = (p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())
    return sorted(n for n in names if n != META_FILE)


def verify_snapshot(
    directory: Path,
    *,
    name: str,
    version: int | str,
    registry: str | None,
    store: str | None,
    registry_reachable: bool,
) -> str:
    """Refuse a snapshot directory unless it hashes to the recorded value.

    Parameters
    ----------
    directory : the snapshot folder inside the BentoML model.
    name, version : the registered model version it belongs to.
    registry : ``harmcast.snapshot_sha256`` on that version (None when absent).
    store : the BentoML model's ``snapshot_sha256`` metadata (None when absent).
    registry_reachable : whether ``registry`` was read from a reachable registry;
        when False only ``store`` is checked.

    Returns
    -------
    str
        The snapshot's SHA-256.

    Raises
    ------
    NotApproved
        The snapshot is missing, no hash is recorded, the registry and the
        store disagree, or the files hash to something else.
    """
    directory = Path(directory)
    if not directory.is_dir() or not _files(directory):
        raise NotApproved(MSG_SNAPSHOT_MISSING.format(name=name, version=version, path=directory))
    if registry_reachable:
        if not registry:
            raise NotApproved(_unrecorded(name, version, REGISTRY_SOURCE))
        if not store:
            raise NotApproved(_unrecorded(name, version, STORE_SOURCE))
        if registry != store:
            raise NotApproved(
                MSG_SNAPSHOT_DISAGREE.format(
                    name=name, version=version, registry=registry, tag=TAG_SNAPSHOT, store=store
                )
            )
        expected, source = registry, REGISTRY_SOURCE
    else:
        if not store:
            raise NotApproved(_unrecorded(name, version, STORE_SOURCE))
        expected, source = store, STORE_SOURCE
    actual = snapshot_sha256(directory)
    if actual != expected:
        raise NotApproved(
            MSG_SNAPSHOT_HASH.format(
                name=name,
                version=version,
                path=directory,
                files=", ".join(_files(directory)),
                actual=actual,
                source=source,
                expected=expected,
            )
        )
    return actual


def _unrecorded(name: str, version: int | str, source: str) -> str:
    return MSG_SNAPSHOT_UNRECORDED.format(name=name, version=version, source=source)


def registry_snapshot_sha256(client: Any, name: str, version: int | str) -> str | None:
    """Return ``harmcast.snapshot_sha256`` on a registry version (None when absent)."""
    return client.get_model_version(name, str(version)).tags.get(TAG_SNAPSHOT) or None
