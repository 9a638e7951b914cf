"""Where the review desk reads and writes, and how it trusts a browser."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["DeskSettings", "DESK_DIR"]

#: The desk's own files under the project root (enrolment codes, passkeys).
DESK_DIR = Path("governance/desk")


@dataclass(frozen=True)
class DeskSettings:
    """Everything the desk needs, resolved once by the command that starts it.

    Parameters
    ----------
    root : the project root (data layers, ``mlruns/``, ``model_cards/``).
    tracking_uri : the sqlite tracking and registry URI.
    model_name : the registered model the board reviews.
    policy_path : the governance policy file.
    audit_log : the hash-chained audit log.
    cards_root : where published and draft cards live.
    rp_id : the WebAuthn relying-party id (the host name members browse to).
    origins : the origins a passkey ceremony may come from.
    max_failures : failed sign-ins allowed per member (and per client) in ``lockout_s``.
    lockout_s : the window, in seconds, failed sign-ins are counted over.
    session_s : how long a signed-in session lasts.
    secure_cookie : mark the session cookie ``Secure`` (served over TLS).
    """

    root: Path
    tracking_uri: str
    model_name: str
    policy_path: Path
    audit_log: Path
    cards_root: Path
    rp_id: str = "localhost"
    origins: tuple[str, ...] = ()
    max_failures: int = 5
    lockout_s: float = 900.0
    session_s: float = 8 * 3600.0
    secure_cookie: bool = False

    @property
    def desk_dir(self) -> Path:
        """The folder of the desk's own files."""
        return self.root / DESK_DIR
