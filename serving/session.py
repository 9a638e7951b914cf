"""The planner's browser session: a signed cookie, and a limit on failed sign-ins.

The cookie is stateless (``v1.<expiry>.<nonce>.<mac>``), so that every worker
of the service accepts it: its key is derived from the planner credentials
themselves, so replacing them ends every session. Sign-out clears the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import deque
from collections.abc import Iterable

__all__ = [
    "SESSION_COOKIE",
    "SESSION_SECONDS",
    "MAX_FAILURES",
    "FAILURE_WINDOW_SECONDS",
    "session_key",
    "issue_session",
    "verify_session",
    "check_credential",
    "cookie_header",
    "clear_cookie_header",
    "FailedSignins",
]

SESSION_COOKIE = "harmcast_session"
SESSION_SECONDS = 8 * 3600
MAX_FAILURES = 5
FAILURE_WINDOW_SECONDS = 300.0


def session_key(planner_tokens: Iterable[str]) -> bytes:
    """Return the key that signs planner sessions (empty when no planner may sign in)."""
    tokens = sorted(planner_tokens)
    if not tokens:
        return b""
    return hmac.new(b"harmcast-session-v1", "\n".join(tokens).encode(), hashlib.sha256).digest()


def _mac(key: bytes, body: str) -> str:
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def issue_session(key: bytes, *, now: float) -> str:
    """Return a new cookie value valid for :data:`SESSION_SECONDS`."""
    body = f"v1.{int(now) + SESSION_SECONDS}.{secrets.token_urlsafe(12)}"
    return f"{body}.{_mac(key, body)}"


def verify_session(key: bytes, value: str, *, now: float) -> bool:
    """Whether ``value`` is a cookie this key issued that has not expired."""
    body, _, mac = value.rpartition(".")
    parts = body.split(".")
    if not key or len(parts) != 3 or parts[0] != "v1" or not parts[1].isdigit():
        return False
    return hmac.compare_digest(mac, _mac(key, body)) and int(parts[1]) > now


def check_credential(credential: str, planner_tokens: Iterable[str]) -> bool:
    """Whether ``credential`` is one of the planner tokens (every one compared)."""
    given = credential.strip().encode()
    return bool(given) and any(
        [hmac.compare_digest(given, token.encode()) for token in planner_tokens]
    )


def cookie_header(value: str, *, secure: bool) -> str:
    """Return the ``Set-Cookie`` value of a session (HttpOnly, SameSite=Strict)."""
    attributes = f"Path=/; Max-Age={SESSION_SECONDS}; HttpOnly; SameSite=Strict"
    return f"{SESSION_COOKIE}={value}; {attributes}" + ("; Secure" if secure else "")


def clear_cookie_header(*, secure: bool) -> str:
    """Return the ``Set-Cookie`` value that ends a session in the browser."""
    attributes = "Path=/; Max-Age=0; HttpOnly; SameSite=Strict"
    return f"{SESSION_COOKIE}=; {attributes}" + ("; Secure" if secure else "")


class FailedSignins:
    """At most :data:`MAX_FAILURES` failed sign-ins per client in a sliding window.

    Kept in each worker's memory: a client spread over two workers gets at
    most twice the limit, still a handful of guesses against a long random
    credential.
    """

    def __init__(
        self, *, limit: int = MAX_FAILURES, window: float = FAILURE_WINDOW_SECONDS
    ) -> None:
        self.limit, self.window = limit, window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.setdefault(client, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def blocked(self, client: str, *, now: float) -> bool:
        """Whether ``client`` has used up its failed attempts."""
        return len(self._recent(client, now)) >= self.limit

    def record(self, client: str, *, now: float) -> None:
        """Count one failed attempt of ``client``."""
        if len(self._failures) > 10_000:  # bounded: forget the oldest clients
            for stale in list(self._failures)[:5_000]:
                del self._failures[stale]
        self._recent(client, now).append(now)

    def retry_after(self, client: str, *, now: float) -> int:
        """Seconds until ``client`` may try again."""
        times = self._recent(client, now)
        return max(1, int(times[0] + self.window - now) + 1) if times else 0
