"""Hashes that tie the governance evidence together.

Every piece of evidence a decision covers is named by one SHA-256: the model
artefact (the booster's ``model.lgb`` text, with the served-forecast choice
``stack.json`` when there is one), the gate report, the policy, the
card and the snapshot. One definition each, so that the gate, the registry,
the signed decisions, the card and the service compare like with like.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

__all__ = [
    "MODEL_FILE",
    "STACK_FILE",
    "canonical_json",
    "sha256_bytes",
    "sha256_file",
    "model_artefact_sha256",
]

#: The file inside a model directory (``data/05_models/`` or an MLflow logged
#: model) whose bytes name the model.
MODEL_FILE = "model.lgb"
#: The served-forecast choice beside it (``training.forecaster.STACK_FILE``): its
#: weights change what is served, so it is part of the artefact when present.
STACK_FILE = "stack.json"


def canonical_json(obj: Any) -> bytes:
    """Return ``obj`` as canonical JSON bytes: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_bytes(data: bytes) -> str:
    """Return the hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Return the hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_artefact_sha256(model_dir: str | Path) -> str:
    """Return the SHA-256 that names a model found under ``model_dir``.

    That of ``model.lgb`` alone when no ``stack.json`` lies beside it (so model
    directories written before stacking keep their hash); otherwise
    ``sha256_bytes(canonical_json({"model.lgb": sha, "stack.json": sha}))``, so
    that swapping the served weights changes the artefact.
    """
    root = Path(model_dir)
    found = sorted(root.rglob(MODEL_FILE)) if root.is_dir() else [root]
    if not found:
        raise FileNotFoundError(f"{root}: no {MODEL_FILE} under this model directory")
    model = sha256_file(found[0])
    stack = found[0].parent / STACK_FILE
    if not stack.is_file():
        return model
    return sha256_bytes(canonical_json({MODEL_FILE: model, STACK_FILE: sha256_file(stack)}))
