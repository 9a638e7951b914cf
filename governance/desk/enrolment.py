"""One-time enrolment codes: how a board member's first passkey is tied to them.

``harmcast board enrol --member ID`` issues a code and prints it once; only its
SHA-256 is stored (``<root>/governance/desk/enrolment_codes.json``). The member
types it into the desk beside their member id; it is good for one enrolment and
expires. Issuing a new code for a member replaces the old one.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from governance.evidence import sha256_bytes
from training.errors import HarmcastError

__all__ = [
    "EnrolmentError",
    "CODES_FILE",
    "BAD_CODE",
    "EXPIRED_CODE",
    "NOT_ON_ROSTER",
    "issue_code",
    "check_code",
    "consume_code",
]

CODES_FILE = "enrolment_codes.json"
BAD_CODE = "no valid enrolment code for member {member!r} (codes are single use)"
EXPIRED_CODE = "the enrolment code for member {member!r} expired at {expires}"
NOT_ON_ROSTER = "member {member!r} is not on the board roster ({roster})"
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class EnrolmentError(HarmcastError, PermissionError):
    """An enrolment code is missing, wrong, used or expired."""


def _path(board_dir: Path) -> Path:
    return Path(board_dir) / CODES_FILE


def _read(board_dir: Path) -> dict[str, dict[str, str]]:
    path = _path(board_dir)
    return json.loads(path.read_text()) if path.is_file() else {}


def _write(board_dir: Path, codes: dict[str, dict[str, str]]) -> None:
    path = _path(board_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".tmp")
    staging.write_text(json.dumps(codes, indent=2, sort_keys=True) + "\n")
    os.chmod(staging, 0o600)
    staging.replace(path)


def _normalise(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def _hash(member: str, code: str) -> str:
    return sha256_bytes(f"{member}\0{_normalise(code)}".encode())


def issue_code(
    board_dir: Path, member: str, roster: list[str], *, ttl: timedelta = timedelta(hours=24)
) -> tuple[str, datetime]:
    """Issue a fresh one-time code for ``member``; return ``(code, expires_at)``.

    Raises
    ------
    EnrolmentError
        When ``member`` is not on the roster.
    """
    if member not in roster:
        raise EnrolmentError(NOT_ON_ROSTER.format(member=member, roster=", ".join(roster)))
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(16))
    code = "-".join(raw[i : i + 4] for i in range(0, 16, 4))
    expires = datetime.now(UTC) + ttl
    codes = _read(board_dir)
    codes[member] = {"sha256": _hash(member, code), "expires_at": expires.isoformat()}
    _write(board_dir, codes)
    return code, expires


def check_code(board_dir: Path, member: str, code: str, *, now: datetime | None = None) -> None:
    """Raise ``EnrolmentError`` unless ``code`` is ``member``'s live code (it stays live)."""
    entry = _read(board_dir).get(member)
    if entry is None or not hmac.compare_digest(entry["sha256"], _hash(member, code)):
        raise EnrolmentError(BAD_CODE.format(member=member))
    expires = datetime.fromisoformat(entry["expires_at"])
    if (now or datetime.now(UTC)) >= expires:
        raise EnrolmentError(EXPIRED_CODE.format(member=member, expires=entry["expires_at"]))


def consume_code(board_dir: Path, member: str, code: str) -> None:
    """Check ``member``'s code and delete it, so it can never be used again."""
    check_code(board_dir, member, code)
    codes = _read(board_dir)
    codes.pop(member, None)
    _write(board_dir, codes)
