"""Signed-in sessions and the limit on failed sign-ins, kept in the desk's memory.

A session is a random token in an HttpOnly, SameSite=Strict cookie that names
one member; it ends at sign-out, on expiry, or when the desk restarts. Failed
sign-ins are counted per member and per client address over a sliding window;
past the limit every sign-in attempt is refused until the window has passed,
so a stolen member id cannot be guessed at.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Session", "SessionStore", "FailureLimiter"]


@dataclass
class Session:
    """One signed-in member, and the ceremony they are in the middle of."""

    member: str
    expires: float
    pending: dict[str, Any] = field(default_factory=dict)


class SessionStore:
    """Sessions by token; the token is the only thing the browser holds."""

    def __init__(self, lifetime_s: float) -> None:
        self._lifetime = lifetime_s
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def start(self, member: str) -> str:
        """Start a session for ``member`` and return its token."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[token] = Session(member, time.monotonic() + self._lifetime)
        return token

    def get(self, token: str | None) -> Session | None:
        """Return the live session of ``token``, or None."""
        if not token:
            return None
        with self._lock:
            session = self._sessions.get(token)
            if session is not None and session.expires < time.monotonic():
                del self._sessions[token]
                return None
            return session

    def end(self, token: str | None) -> None:
        """Forget the session (sign-out)."""
        with self._lock:
            self._sessions.pop(token or "", None)


class FailureLimiter:
    """Refuse sign-ins for a key after its limit of failures in ``window_s``.

    Keys starting ``client:`` (an address, shared by every member behind it) get
    ``client_factor`` times the limit of a member.
    """

    def __init__(self, limit: int, window_s: float, *, client_factor: int = 4) -> None:
        self._limit = limit
        self._client_limit = limit * client_factor
        self._window = window_s
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str) -> deque[float]:
        times = self._failures[key]
        cutoff = time.monotonic() - self._window
        while times and times[0] < cutoff:
            times.popleft()
        return times

    def blocked(self, *keys: str) -> bool:
        """Whether any of ``keys`` has used up its failures."""
        with self._lock:
            return any(len(self._recent(k)) >= self._limit_of(k) for k in keys)

    def _limit_of(self, key: str) -> int:
        return self._client_limit if key.startswith("client:") else self._limit

    def fail(self, *keys: str) -> None:
        """Count one failed sign-in against each of ``keys``."""
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key).append(now)

    def clear(self, *keys: str) -> None:
        """Forget the failures of ``keys`` after a successful sign-in."""
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)
