"""Files written whole or not at all: a temporary beside the target, then a rename.

``os.replace`` within one folder is atomic, so a reader sees the old file or
the new one, never half of one. A step that writes several files stages them
all (:func:`stage_files`) before it renames any (:func:`commit_files`): a
failure while staging leaves every target as it was.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["stage_files", "commit_files", "discard_files", "write_files"]


def _temporary(path: Path) -> Path:
    # same folder as the target (a rename across file systems is not atomic)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _stage(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temporary(path)
    try:
        with temp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def discard_files(staged: Mapping[Path, Path]) -> None:
    """Remove the temporaries of ``staged`` (target -> temporary) that still exist."""
    for temp in staged.values():
        temp.unlink(missing_ok=True)


def stage_files(files: Mapping[Path, bytes]) -> dict[Path, Path]:
    """Write each file's bytes to a temporary beside it; return target -> temporary.

    Raises
    ------
    OSError
        When a temporary cannot be written; the ones already written are removed.
    """
    staged: dict[Path, Path] = {}
    try:
        for path, data in files.items():
            staged[Path(path)] = _stage(Path(path), data)
    except BaseException:
        discard_files(staged)
        raise
    return staged


def commit_files(staged: Mapping[Path, Path]) -> None:
    """Rename each temporary onto its target, in the mapping's order."""
    for path, temp in staged.items():
        os.replace(temp, path)


def write_files(files: Mapping[Path, bytes]) -> None:
    """Write ``files`` (path -> bytes): all staged first, then renamed into place."""
    staged = stage_files(files)
    try:
        commit_files(staged)
    finally:
        discard_files(staged)
