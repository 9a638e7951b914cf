"""Bearer-token access by role, as an ASGI middleware in front of the service.

Tokens come from the environment only (never from the repository): the
variable named by ``ServingParams.planner_token_env`` (or ``board_token_env``)
holds comma-separated tokens, or the path of a file with one token per line.
A role without tokens admits no one. Paths not listed in ``rules`` (health,
metrics, the OpenAPI document) stay public.
"""

from __future__ import annotations

import hmac
import json
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from training.config import ServingParams

__all__ = [
    "BearerAuth",
    "load_tokens",
    "access_rules",
    "PLANNER",
    "BOARD",
    "MSG_MISSING",
    "MSG_UNKNOWN",
    "MSG_FORBIDDEN",
]

PLANNER = "planner"
BOARD = "board"

MSG_MISSING = "missing bearer token: send 'Authorization: Bearer <token>'"
MSG_UNKNOWN = "unknown bearer token"
MSG_FORBIDDEN = "the {role} role may not call {path} (allowed: {allowed})"

_SPLIT = re.compile(r"[,\s]+")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def load_tokens(env_name: str, environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """Return the tokens in ``$env_name``: comma-separated, or a file path."""
    value = (os.environ if environ is None else environ).get(env_name, "").strip()
    if value and "," not in value and Path(value).is_file():
        value = Path(value).read_text()
    return frozenset(t for t in _SPLIT.split(value) if t)


def access_rules(params: ServingParams) -> dict[str, frozenset[str]]:
    """Return the roles allowed on each protected path."""
    forecasts = frozenset({PLANNER})
    rules = {"/forecast": forecasts, "/forecast_geojson": forecasts, "/areas": forecasts}
    if not params.public_cards:
        cards = frozenset({PLANNER, BOARD})
        rules |= {"/model_card": cards, "/model_card.html": cards}
    return rules


class BearerAuth:
    """ASGI middleware answering 401/403 as JSON before a protected path runs.

    Parameters
    ----------
    app : the wrapped ASGI app.
    params : serving parameters (token variable names, public cards).
    environ : where tokens are read (default: ``os.environ``).
    """

    def __init__(
        self, app: Any, *, params: ServingParams, environ: Mapping[str, str] | None = None
    ) -> None:
        self.app = app
        self.rules = access_rules(params)
        self.tokens = {
            PLANNER: load_tokens(params.planner_token_env, environ),
            BOARD: load_tokens(params.board_token_env, environ),
        }

    def _role(self, token: str) -> str | None:
        for role, tokens in self.tokens.items():
            # compare every token: the time taken must not reveal a prefix match
            if any([hmac.compare_digest(token.encode(), t.encode()) for t in tokens]):
                return role
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the token of an HTTP request to a protected path, then pass it on."""
        allowed = self.rules.get(scope.get("path", "")) if scope["type"] == "http" else None
        if allowed is None:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            await _reply(send, 401, MSG_MISSING)
            return
        role = self._role(token.strip())
        if role is None:
            await _reply(send, 401, MSG_UNKNOWN)
        elif role not in allowed:
            message = MSG_FORBIDDEN.format(
                role=role, path=scope["path"], allowed=", ".join(sorted(allowed))
            )
            await _reply(send, 403, message)
        else:
            await self.app(scope, receive, send)


async def _reply(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="harmcast"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
