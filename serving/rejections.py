"""The one shape of a rejected request, and the body media types the API accepts.

Every 400 and 415 the forecast API sends is ``{"error": str, "detail": [{"type",
"loc", "msg"}]}``: pydantic's errors as BentoML sends them, the snapshot's
:class:`serving.schemas.RequestError` and a refused media type alike, so one
schema in the OpenAPI document describes them all.

The API reads JSON only. BentoML parses a ``multipart/form-data`` body itself
and answers 500 when it is not valid multipart; :class:`JsonBodiesOnly`
answers 415 first for any body that does not declare JSON.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.responses import JSONResponse

__all__ = [
    "JsonBodiesOnly",
    "rejection",
    "rejection_response",
    "MSG_MEDIA_TYPE",
    "JSON_MEDIA_TYPE",
]

JSON_MEDIA_TYPE = "application/json"
MSG_MEDIA_TYPE = "the request body must be application/json, not {media_type}"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def rejection(message: str, *, kind: str, loc: Iterable[str | int] = ("body",)) -> dict[str, Any]:
    """Return the body of a rejected request."""
    return {"error": message, "detail": [{"type": kind, "loc": list(loc), "msg": message}]}


def rejection_response(message: str, *, kind: str, status: int = 400) -> JSONResponse:
    """Return a rejection as a JSON response (400 unless said otherwise)."""
    return JSONResponse(rejection(message, kind=kind), status_code=status)


def _media_type(scope: Scope) -> str:
    for name, value in scope.get("headers") or []:
        if name == b"content-type":
            return value.decode("latin-1").split(";", 1)[0].strip().lower()
    return ""


class JsonBodiesOnly:
    """ASGI middleware: a POST to one of ``paths`` must send JSON (or no content type).

    Parameters
    ----------
    app : the wrapped ASGI app.
    paths : the API routes (``/forecast``...).
    """

    def __init__(self, app: Any, *, paths: Iterable[str]) -> None:
        self.app = app
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 415 to a non-JSON body on an API route; pass everything else on."""
        if scope["type"] == "http" and scope.get("path") in self.paths:
            media_type = _media_type(scope)
            if media_type and media_type != JSON_MEDIA_TYPE:
                message = MSG_MEDIA_TYPE.format(media_type=json.dumps(media_type))
                loc = ("header", "content-type")
                body = json.dumps(rejection(message, kind="unsupported_media_type", loc=loc))
                await _send_json(send, 415, body.encode())
                return
        await self.app(scope, receive, send)


async def _send_json(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
