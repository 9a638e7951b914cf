"""The service's OpenAPI document, made to say what the service does.

BentoML generates ``/docs.json`` from the service. Left as generated it
declares no security scheme (the Swagger page cannot authorise), describes a
400 as one object with a string ``detail`` (the service sends a list), drops
the request's ``null`` values and says nothing of what only the snapshot
knows. :func:`truthful_openapi` corrects the document and
:class:`TruthfulOpenAPI` serves the corrected one:

- a bearer scheme, with ``security`` on every protected operation (and 401/403
  answers), ``security: []`` on every public one;
- 400 and 415 as :mod:`serving.rejections` sends them;
- the request body from :class:`serving.schemas.ForecastRequest`: nullable
  fields, ``areas`` and ``top_k`` excluding each other, and, when the service
  knows its snapshot, the area codes, weeks and horizons it answers for.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from serving.schemas import ForecastRequest

__all__ = [
    "SnapshotScope",
    "TruthfulOpenAPI",
    "truthful_openapi",
    "request_schema",
    "BEARER",
    "DOC_PATH",
]

BEARER = "bearer"
DOC_PATH = "/docs.json"
_REF = "#/components/schemas/"

_REJECTION = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string"},
        "detail": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "loc", "msg"],
                "properties": {
                    "type": {"type": "string"},
                    "loc": {
                        "type": "array",
                        "items": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                    },
                    "msg": {"type": "string"},
                },
            },
        },
    },
}
_AUTH_REFUSED = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
}

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class SnapshotScope:
    """What the snapshot answers for: area codes, and each horizon's target week."""

    area_codes: tuple[str, ...]
    weeks: Mapping[int, Sequence[str]]

    @classmethod
    def of(cls, frame: Any) -> SnapshotScope:
        """Read the scope of a snapshot frame (``area_code``, ``horizon``, ``target_week``)."""
        weeks: dict[int, Sequence[str]] = {}
        for horizon, target in frame.groupby("horizon")["target_week"].first().items():
            day = target.date()
            year, week, _ = day.isocalendar()
            weeks[int(horizon)] = (day.isoformat(), f"{year}-W{week:02d}")
        return cls(area_codes=tuple(sorted(frame["area_code"].unique())), weeks=weeks)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """Turn pydantic's ``anyOf: [X, {type: null}]`` into OpenAPI 3.0's ``X, nullable``."""
    options = schema.get("anyOf")
    if not options or {"type": "null"} not in options or len(options) != 2:
        return schema
    (inner,) = [o for o in options if o != {"type": "null"}]
    merged = {**{k: v for k, v in schema.items() if k != "anyOf"}, **inner, "nullable": True}
    if "examples" in merged:  # OpenAPI 3.0 schemas take one `example`
        merged["example"] = merged.pop("examples")[0]
    return merged


def request_schema(scope: SnapshotScope | None = None) -> dict[str, Any]:
    """Return the forecast request body's schema (OpenAPI 3.0).

    Parameters
    ----------
    scope : the snapshot's area codes and weeks; without it, only what the
        request model itself checks.
    """
    schema = ForecastRequest.model_json_schema()
    properties = {name: _nullable(p) for name, p in schema["properties"].items()}
    properties["week"]["pattern"] = r"^(\d{4}-W\d{2}|\d{4}-\d{2}-\d{2})$"
    result: dict[str, Any] = {
        "type": "object",
        "title": schema.get("title", "ForecastRequest"),
        "description": (schema.get("description") or "") + " areas and top_k exclude each other.",
        "properties": properties,
        "additionalProperties": False,
        # both given (and not null) is refused
        "not": {
            "required": ["areas", "top_k"],
            "properties": {"areas": {"type": "array"}, "top_k": {"type": "integer"}},
        },
    }
    if scope is not None:
        _restrict_to_snapshot(result, scope)
    return result


def _restrict_to_snapshot(schema: dict[str, Any], scope: SnapshotScope) -> None:
    props = schema["properties"]
    props["areas"]["items"] = {"type": "string", "enum": list(scope.area_codes)}
    horizons = sorted(scope.weeks)
    props["horizon"]["enum"] = [*horizons, None]
    props["week"]["enum"] = [w for h in horizons for w in scope.weeks[h]] + [None]
    # a week fixes the horizon: either no week, or a week with its own horizon (or none)
    schema["anyOf"] = [
        {"properties": {"week": {"enum": [None]}}},  # also matches a body without week
        *(
            {
                "required": ["week"],
                "properties": {
                    "week": {"enum": list(scope.weeks[h])},
                    "horizon": {"enum": [h, None]},
                },
            }
            for h in horizons
        ),
    ]


def truthful_openapi(
    doc: dict[str, Any],
    *,
    protected: Mapping[str, Iterable[str]],
    api_paths: Iterable[str],
    scope: SnapshotScope | None = None,
) -> dict[str, Any]:
    """Return a corrected copy of BentoML's OpenAPI document.

    Parameters
    ----------
    doc : the document BentoML generated.
    protected : the roles allowed on each protected path (every other path is public).
    api_paths : the forecast API routes (POST, JSON body).
    scope : what the snapshot answers for (see :func:`request_schema`).
    """
    doc = copy.deepcopy(doc)
    components = doc.setdefault("components", {})
    components.setdefault("securitySchemes", {})[BEARER] = {
        "type": "http",
        "scheme": "bearer",
        "description": "A role's token (planner or board), from the service's operator.",
    }
    schemas = components.setdefault("schemas", {})
    schemas["RequestRejected"] = _REJECTION
    schemas["AuthRefused"] = _AUTH_REFUSED
    api_paths = frozenset(api_paths)
    body = request_schema(scope)
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            _secure(operation, protected.get(path))
            if path in api_paths and method == "post":
                _api_operation(operation, body)
    return doc


def _json(ref: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF + ref}}},
    }


def _secure(operation: dict[str, Any], roles: Iterable[str] | None) -> None:
    if roles is None:
        operation["security"] = []
        return
    operation["security"] = [{BEARER: []}]
    operation["x-harmcast-roles"] = sorted(roles)
    operation["responses"]["401"] = _json("AuthRefused", "No bearer token, or an unknown one")
    operation["responses"]["403"] = _json("AuthRefused", "The token's role may not call this")


def _api_operation(operation: dict[str, Any], body: dict[str, Any]) -> None:
    operation["requestBody"] = {
        "required": False,
        "content": {"application/json": {"schema": body}},
    }
    responses = operation["responses"]
    responses["400"] = _json(
        "RequestRejected", "The request is invalid, or the snapshot cannot answer it"
    )
    responses["415"] = _json("RequestRejected", "The body is not application/json")
    responses.pop("404", None)  # the API routes never answer 404


class TruthfulOpenAPI:
    """ASGI middleware serving :func:`truthful_openapi` of the document at ``/docs.json``."""

    def __init__(
        self, app: Any, *, protected, api_paths, scope: SnapshotScope | None = None
    ) -> None:
        self.app = app
        self.options = {"protected": protected, "api_paths": api_paths, "scope": scope}
        self._cached: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the corrected document; pass every other request on."""
        if scope["type"] != "http" or scope.get("path") != DOC_PATH:
            await self.app(scope, receive, send)
            return
        if self._cached is None:
            status, body = await _capture(self.app, scope, receive)
            if status != 200:
                await _send(send, status, body)
                return
            self._cached = json.dumps(truthful_openapi(json.loads(body), **self.options)).encode()
        await _send(send, 200, self._cached)


async def _capture(app: Any, scope: Scope, receive: Receive) -> tuple[int, bytes]:
    status, chunks = 500, []

    async def keep(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, keep)
    return status, b"".join(chunks)


async def _send(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
