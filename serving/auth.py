"""Default-deny access by role, as an ASGI middleware in front of the service.

Every route declares who may call it beside its definition, with
:func:`allow` (``@allow(PLANNER)``, ``@allow(PUBLIC)``); BentoML's own routes
are declared in :data:`BENTOML_ROUTES`. A path that matches no declared route
is answered 404 here and never reaches the app (nor a metrics label).

Tokens come from the environment only (never from the repository): the
variable named by ``ServingParams.planner_token_env`` (``board_token_env``,
``metrics_token_env``) holds comma-separated tokens, or the path of a file
with one token per line. A role without tokens admits no one. A planner may
also present the session cookie the briefing's sign-in form sets
(:mod:`serving.session`).
"""

from __future__ import annotations

import hmac
import json
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from serving.session import SESSION_COOKIE, session_key, verify_session
from training.config import ServingParams

__all__ = [
    "AccessControl",
    "BearerAuth",
    "RouteTable",
    "allow",
    "declared_roles",
    "service_routes",
    "protected_paths",
    "load_tokens",
    "PLANNER",
    "BOARD",
    "OPERATOR",
    "PUBLIC",
    "CARD_READERS",
    "ROLES_ATTRIBUTE",
    "BENTOML_ROUTES",
    "UNMATCHED",
    "MSG_MISSING",
    "MSG_UNKNOWN",
    "MSG_FORBIDDEN",
    "MSG_NO_ROUTE",
    "MSG_UNDECLARED",
    "MSG_CONFLICT",
]

PLANNER = "planner"
BOARD = "board"
OPERATOR = "operator"
PUBLIC = "public"
#: the published model card: public when ``serving.public_cards``, else planners and the board
CARD_READERS = "card_readers"
ROLES_ATTRIBUTE = "__harmcast_roles__"
#: the label of every request to a path no route declares
UNMATCHED = "unmatched"

#: BentoML's own routes, which no decorator of ours can reach. The health checks
#: are public for load balancers; the OpenAPI document and the Swagger page's
#: static files describe the API and carry no data; BentoML's own index page
#: at ``/`` is shadowed by the briefing and its ``/metrics`` is switched off
#: (``serving.metrics`` serves a bounded one).
BENTOML_ROUTES: dict[str, frozenset[str]] = {
    "/livez": frozenset({PUBLIC}),
    "/healthz": frozenset({PUBLIC}),
    "/readyz": frozenset({PUBLIC}),
    "/docs.json": frozenset({PUBLIC}),
    "/schema.json": frozenset({PUBLIC}),
    "/static_content/{path:path}": frozenset({PUBLIC}),
}

MSG_MISSING = "missing bearer token: send 'Authorization: Bearer <token>'"
MSG_UNKNOWN = "unknown bearer token"
MSG_FORBIDDEN = "the {role} role may not call {path} (allowed: {allowed})"
MSG_NO_ROUTE = "no such path: {path}"
MSG_CONFLICT = "route {path} is declared twice with different roles (one path, one role set)"
MSG_UNDECLARED = "route {path} declares no role: decorate it with serving.auth.allow(...)"

_SPLIT = re.compile(r"[,\s]+")
_PARAM = re.compile(r"\{(\w+)(:path)?\}")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
F = TypeVar("F", bound=Callable[..., Any])


def allow(*roles: str) -> Callable[[F], F]:
    """Declare which roles may call the decorated route (``PUBLIC`` for anyone).

    Put it directly under ``@pages.get(...)`` or ``@bentoml.api(...)``.
    """
    if not roles:
        raise ValueError("allow() needs at least one role (PUBLIC for a public route)")

    def mark(func: F) -> F:
        setattr(func, ROLES_ATTRIBUTE, frozenset(roles))
        return func

    return mark


def declared_roles(endpoint: Any) -> frozenset[str] | None:
    """Return the roles an endpoint declared with :func:`allow`, or None."""
    return getattr(endpoint, ROLES_ATTRIBUTE, None)


def service_routes(service: Any) -> dict[str, frozenset[str] | None]:
    """Return every route template of a BentoML service class and its declared roles.

    The service's APIs, the routes of every mounted FastAPI app and
    :data:`BENTOML_ROUTES`; a route that declared nothing maps to None.
    """
    routes: dict[str, frozenset[str] | None] = dict(BENTOML_ROUTES)
    for method in service.apis.values():
        routes[method.route] = declared_roles(method.func)
    for app, mount, _name in service.mount_apps:
        for path, endpoint in _walk(getattr(app, "routes", []), mount.rstrip("/")):
            roles = declared_roles(endpoint)
            if path in routes and routes[path] != roles:
                raise ValueError(MSG_CONFLICT.format(path=path))
            routes[path] = roles
    return routes


def _walk(routes: Iterable[Any], prefix: str) -> Iterable[tuple[str, Any]]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's include_router
        if included is not None:
            inner = prefix + getattr(getattr(route, "include_context", None), "prefix", "")
            yield from _walk(included.routes, inner)
        elif getattr(route, "path", None) is not None and hasattr(route, "endpoint"):
            yield prefix + route.path, route.endpoint
        elif getattr(route, "routes", None) is not None:  # a mounted sub-application
            yield from _walk(route.routes, prefix + getattr(route, "path", ""))


def _compile(template: str) -> re.Pattern[str]:
    pattern, last = "", 0
    for match in _PARAM.finditer(template):
        pattern += re.escape(template[last : match.start()])
        pattern += ".+" if match.group(2) else "[^/]+"
        last = match.end()
    return re.compile("^" + pattern + re.escape(template[last:]) + "$")


class RouteTable:
    """Route templates and their roles, matched exactly (path parameters as segments)."""

    def __init__(self, routes: Mapping[str, Iterable[str]]) -> None:
        self.exact = {t: frozenset(r) for t, r in routes.items() if "{" not in t}
        self.patterns = [
            (t, _compile(t), frozenset(r)) for t, r in sorted(routes.items()) if "{" in t
        ]

    def match(self, path: str) -> tuple[str, frozenset[str]] | None:
        """Return the template matching ``path`` and its roles, or None."""
        if path in self.exact:
            return path, self.exact[path]
        for template, pattern, roles in self.patterns:
            if pattern.match(path):
                return template, roles
        return None

    def template(self, path: str) -> str:
        """Return the template matching ``path``, or :data:`UNMATCHED`."""
        found = self.match(path)
        return found[0] if found else UNMATCHED


def load_tokens(env_name: str, environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """Return the tokens in ``$env_name``: comma-separated, or a file path."""
    value = (os.environ if environ is None else environ).get(env_name, "").strip()
    if value and "," not in value and Path(value).is_file():
        value = Path(value).read_text()
    return frozenset(t for t in _SPLIT.split(value) if t)


def _resolve(roles: frozenset[str], params: ServingParams) -> frozenset[str]:
    if CARD_READERS not in roles:
        return roles
    readers = frozenset({PUBLIC}) if params.public_cards else frozenset({PLANNER, BOARD})
    return (roles - {CARD_READERS}) | readers


def protected_paths(
    routes: Mapping[str, frozenset[str] | None], params: ServingParams
) -> dict[str, frozenset[str]]:
    """Return the roles allowed on each route that is not public under ``params``."""
    resolved = {path: _resolve(roles or frozenset(), params) for path, roles in routes.items()}
    return {path: roles for path, roles in resolved.items() if PUBLIC not in roles}


@dataclass(frozen=True)
class _Credential:
    role: str | None
    presented: bool


class AccessControl:
    """ASGI middleware: 404 for undeclared paths, 401/403 before a protected route runs.

    Parameters
    ----------
    app : the wrapped ASGI app.
    routes : every route template and its declared roles (:func:`service_routes`);
        a route that declared none makes the middleware refuse to start.
    params : serving parameters (token variable names, public cards).
    environ : where tokens are read (default: ``os.environ``).
    """

    def __init__(
        self,
        app: Any,
        *,
        routes: Mapping[str, frozenset[str] | None],
        params: ServingParams,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        undeclared = sorted(t for t, r in routes.items() if not r)
        if undeclared:
            raise ValueError(MSG_UNDECLARED.format(path=", ".join(undeclared)))
        self.app = app
        self.table = RouteTable({t: _resolve(r, params) for t, r in routes.items() if r})
        self.tokens = {
            PLANNER: load_tokens(params.planner_token_env, environ),
            BOARD: load_tokens(params.board_token_env, environ),
            OPERATOR: load_tokens(params.metrics_token_env, environ),
        }
        self.session_key = session_key(self.tokens[PLANNER])

    def _role(self, token: str) -> str | None:
        for role, tokens in self.tokens.items():
            # compare every token: the time taken must not reveal a prefix match
            if any([hmac.compare_digest(token.encode(), t.encode()) for t in tokens]):
                return role
        return None

    def _credential(self, headers: dict[bytes, bytes]) -> _Credential:
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return _Credential(self._role(token.strip()), True)
        cookie = _cookie(headers.get(b"cookie", b""), SESSION_COOKIE)
        if cookie and verify_session(self.session_key, cookie, now=time.time()):
            return _Credential(PLANNER, True)
        return _Credential(None, False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse an undeclared path or a caller without a fitting role; pass the rest on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        found = self.table.match(path)
        if found is None:
            await _reply(send, 404, MSG_NO_ROUTE.format(path=path[:200]))
            return
        allowed = found[1]
        if PUBLIC in allowed:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        credential = self._credential(headers)
        if not credential.presented:
            if scope.get("method") == "GET" and b"text/html" in headers.get(b"accept", b""):
                await _redirect(send, "/signin")
            else:
                await _reply(send, 401, MSG_MISSING)
        elif credential.role is None:
            await _reply(send, 401, MSG_UNKNOWN)
        elif credential.role not in allowed:
            message = MSG_FORBIDDEN.format(
                role=credential.role, path=path, allowed=", ".join(sorted(allowed))
            )
            await _reply(send, 403, message)
        else:
            await self.app(scope, receive, send)


#: the former name, kept for callers that import it
BearerAuth = AccessControl


def _cookie(header: bytes, name: str) -> str | None:
    for part in header.decode("latin-1").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


async def _reply(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="harmcast"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, location: str) -> None:
    headers = [(b"location", location.encode()), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
