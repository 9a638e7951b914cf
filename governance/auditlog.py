"""The governance audit log: an append-only, hash-chained JSON Lines file.

Every governance action (register, gate_failed, approve, reject, rollback,
publish, and the snapshot and bento_import that record what is served)
appends one entry. Each entry carries the hash of the one before it
(``prev_hash``) and its own ``hash``, the SHA-256 of its canonical JSON
without the ``hash`` field, so editing, deleting or reordering any earlier
entry breaks the chain at a named entry. Cutting entries off the end leaves a
valid chain, so the hash of each model's latest entry is also kept on the
registered model (tag ``harmcast.audit_head``) and checked by ``verify_log``.

The chain is unkeyed: anyone who can write the file can rewrite and re-hash it.
What cannot be rewritten is signed: a board decision entry carries the
member's DSSE envelope in ``details.envelope``, and an entry harmcast writes
itself carries ``system_signature``, an Ed25519 signature by the root's system
key over the entry's hash (``governance.ledger`` verifies both).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from training.errors import SchemaError

__all__ = [
    "ACTIONS",
    "GENESIS_HASH",
    "DEFAULT_LOG",
    "VerifyResult",
    "default_log_path",
    "entry_hash",
    "append_entry",
    "sign_entry_hash",
    "UNHASHED",
    "SYSTEM_ACTOR",
    "read_log",
    "verify_log",
]

ACTIONS = (
    "register",
    "gate_failed",
    "approve",
    "reject",
    "rollback",
    "publish",
    "snapshot",
    "genesis",
    "amendment",
    "bento_import",
)
#: Fields outside the hash: the hash itself and the system's signature over it.
UNHASHED = ("hash", "system_signature")
#: The actor of harmcast's own entries (register, publish, snapshot, genesis...).
SYSTEM_ACTOR = "harmcast"
GENESIS_HASH = "0" * 64
DEFAULT_LOG = Path("governance_log/audit.jsonl")
_FIELDS = ("seq", "timestamp", "actor", "action", "model", "version", "details", "prev_hash")

UNKNOWN_ACTION = "unknown audit action {action!r}; expected one of {actions}"
NOT_JSON = "entry {n}: not a JSON object"
MISSING_FIELDS = "entry {n}: missing field(s) {fields}"
BAD_SEQ = "entry {n}: sequence number is {seq}, expected {n} (entries deleted or reordered)"
BROKEN_CHAIN = "entry {n}: prev_hash does not match the hash of entry {p} (deleted or reordered)"
BAD_HASH = "entry {n}: hash does not match its contents (entry edited)"
HEAD_MISSING = (
    "model {model!r}: its recorded head entry {head} is not in the log (entries truncated)"
)
HEAD_NOT_LAST = (
    "model {model!r}: entry {n} is after the recorded head entry {k} (entries appended "
    "outside harmcast)"
)


def default_log_path(root: str | Path) -> Path:
    """Return the audit log path under a project root."""
    return Path(root) / DEFAULT_LOG


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: dict[str, Any]) -> str:
    """Return the SHA-256 of an entry's canonical JSON, without its ``hash`` field.

    The entry includes ``prev_hash``, so the hash covers the whole chain before it.
    """
    body = {k: v for k, v in entry.items() if k not in UNHASHED}
    return hashlib.sha256(_canonical(body)).hexdigest()


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def append_entry(
    path: str | Path,
    *,
    actor: str,
    action: str,
    model: str,
    version: str | int | None,
    details: dict[str, Any] | None = None,
    signer: Any = None,
) -> dict[str, Any]:
    """Append one entry to the log and return it (with ``seq`` and ``hash``).

    Parameters
    ----------
    path : the JSON Lines file; created with its folder when absent.
    actor : who acted (a reviewer id, or ``harmcast`` for automated steps).
    action : one of ``ACTIONS``.
    model, version : the registered model and version the action is about.
    details : anything else worth keeping (rationale, failed checks, hashes).
    signer : an Ed25519 private key (the system key) that signs the entry's
        hash into ``system_signature``; None leaves the entry unsigned.
    """
    if action not in ACTIONS:
        raise ValueError(UNKNOWN_ACTION.format(action=action, actions=ACTIONS))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as handle:
        # An exclusive lock keeps two writers from chaining onto the same entry.
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        lines = [line for line in handle.read().splitlines() if line.strip()]
        last = json.loads(lines[-1]) if lines else None
        entry: dict[str, Any] = {
            "seq": len(lines) + 1,
            "timestamp": _utc_now(),
            "actor": actor,
            "action": action,
            "model": model,
            "version": None if version is None else str(version),
            "details": details or {},
            "prev_hash": last["hash"] if last else GENESIS_HASH,
        }
        entry["hash"] = entry_hash(entry)
        if signer is not None:
            entry["system_signature"] = sign_entry_hash(entry["hash"], signer)
        handle.seek(0, 2)
        handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
    return entry


def sign_entry_hash(digest: str, signer: Any) -> dict[str, str]:
    """Return ``{keyid, sig}``: an Ed25519 signature (hex) over an entry's hex hash."""
    from governance.signing import ed25519_key_record

    return {
        "keyid": ed25519_key_record(signer).fingerprint,
        "sig": signer.sign(digest.encode("ascii")).hex(),
    }


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """Read every entry of the log (empty list when the file does not exist).

    Raises
    ------
    SchemaError
        When a line is not a JSON object (naming the file and line).
    """
    path = Path(path)
    if not path.is_file():
        return []
    entries = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SchemaError(path, NOT_JSON.format(n=n), row=n) from exc
        if not isinstance(entry, dict):
            raise SchemaError(path, NOT_JSON.format(n=n), row=n)
        entries.append(entry)
    return entries


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of ``verify_log``.

    Attributes
    ----------
    ok : True when no problem was found.
    n_entries : entries read.
    head : hash of the last entry (``GENESIS_HASH`` for an empty log).
    problems : one message per problem, each naming the entry number (1-based).
    first_bad : the first entry number with a problem, or None.
    """

    ok: bool
    n_entries: int
    head: str
    problems: list[str] = field(default_factory=list)
    first_bad: int | None = None


def _check_entries(lines: list[str]) -> tuple[list[tuple[int, str]], list[dict]]:
    problems: list[tuple[int, str]] = []
    entries: list[dict] = []
    prev = GENESIS_HASH
    for n, line in enumerate(lines, start=1):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            entry = None
        if not isinstance(entry, dict):
            problems.append((n, NOT_JSON.format(n=n)))
            entries.append({})
            prev = ""
            continue
        entries.append(entry)
        missing = [f for f in (*_FIELDS, "hash") if f not in entry]
        if missing:
            problems.append((n, MISSING_FIELDS.format(n=n, fields=missing)))
        if entry.get("seq") != n:
            problems.append((n, BAD_SEQ.format(n=n, seq=entry.get("seq"))))
        if entry.get("prev_hash") != prev:
            problems.append((n, BROKEN_CHAIN.format(n=n, p=n - 1)))
        if entry.get("hash") != entry_hash(entry):
            problems.append((n, BAD_HASH.format(n=n)))
        prev = entry.get("hash", "")
    return problems, entries


def _check_heads(entries: list[dict], heads: dict[str, str]) -> list[tuple[int, str]]:
    problems: list[tuple[int, str]] = []
    for model, head in heads.items():
        where = [n for n, e in enumerate(entries, start=1) if e.get("hash") == head]
        if not where:
            problems.append((len(entries) + 1, HEAD_MISSING.format(model=model, head=head[:12])))
            continue
        k = where[0]
        later = [n for n, e in enumerate(entries, start=1) if n > k and e.get("model") == model]
        if later:
            problems.append((later[0], HEAD_NOT_LAST.format(model=model, n=later[0], k=k)))
    return problems


def verify_log(path: str | Path, *, heads: dict[str, str] | None = None) -> VerifyResult:
    """Check the hash chain of the log, and each model's recorded head entry.

    Parameters
    ----------
    path : the JSON Lines log.
    heads : ``{registered_model: hash}`` of the latest entry recorded for each
        model (the ``harmcast.audit_head`` tags); catches truncation of the tail.

    Returns
    -------
    VerifyResult
        ``ok`` is False when any entry was edited, deleted, reordered, or the
        log was truncated; each problem names its entry number.
    """
    path = Path(path)
    lines = (
        [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        if path.is_file()
        else []
    )
    problems, entries = _check_entries(lines)
    problems += _check_heads(entries, heads or {})
    problems.sort(key=lambda p: p[0])
    head = entries[-1].get("hash", "") if entries else GENESIS_HASH
    return VerifyResult(
        ok=not problems,
        n_entries=len(entries),
        head=head,
        problems=[msg for _, msg in problems],
        first_bad=problems[0][0] if problems else None,
    )
