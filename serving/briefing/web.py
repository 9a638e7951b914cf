"""The briefing's HTTP answers, for the service's routes to return.

:class:`BriefingPages` is built once per worker from the verified bundle (the
same snapshot and approval the API serves) and answers the page, the
downloads, the static files and the sign-in form.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from serving.auth import load_tokens
from serving.briefing import pages
from serving.briefing.view import Briefing
from serving.session import (
    FailedSignins,
    check_credential,
    clear_cookie_header,
    cookie_header,
    issue_session,
    session_key,
)
from training.config import ServingParams

__all__ = ["BriefingPages", "MSG_WRONG_CREDENTIAL", "MSG_TOO_MANY", "MSG_BAD_FORM"]

MSG_WRONG_CREDENTIAL = "That planner credential was not recognised. Check it and try again."
MSG_TOO_MANY = "Too many failed sign-ins from this address. Try again in {seconds} seconds."
MSG_BAD_FORM = "the sign-in form could not be read: send credential as a form field"
#: what the page may load: its own files only, nothing from another host
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class BriefingPages:
    """Answers of the briefing's routes.

    Parameters
    ----------
    bundle : the verified bundle the service serves (approval, snapshot).
    snapshot_dir : the bundle's snapshot directory (the briefing's extra files).
    params : serving parameters (where the planner credentials are).
    """

    def __init__(self, bundle: Any, snapshot_dir: Path, params: ServingParams) -> None:
        self.view = Briefing(bundle.snapshot, snapshot_dir, bundle.approval)
        self.tokens = load_tokens(params.planner_token_env)
        self.key = session_key(self.tokens)
        self.failures = FailedSignins()

    def briefing(
        self, horizon: int | None, district: str | None, area: str | None, *, show_all: bool
    ) -> Response:
        """Return the briefing page."""
        html = pages.render_briefing(
            self.view, horizon=horizon, district=district, area=area, show_all=show_all
        )
        return HTMLResponse(html, headers=_HEADERS)

    def csv(self, horizon: int | None, district: str | None, *, show_all: bool) -> Response:
        """Return the list as a CSV download."""
        h = self.view.horizon_or_first(horizon)
        body = pages.briefing_csv(self.view, horizon=h, district=district, show_all=show_all)
        name = f"harmcast-briefing-{self.view.rows[h][0].target_week}-h{h}.csv"
        headers = {"Content-Disposition": f'attachment; filename="{name}"', **_HEADERS}
        return Response(body, media_type="text/csv; charset=utf-8", headers=headers)

    def geojson(self, horizon: int | None, district: str | None) -> Response:
        """Return the areas as a GeoJSON download."""
        h = self.view.horizon_or_first(horizon)
        body = pages.briefing_geojson(self.view, horizon=h, district=district)
        name = f"harmcast-briefing-{self.view.rows[h][0].target_week}-h{h}.geojson"
        headers = {"Content-Disposition": f'attachment; filename="{name}"', **_HEADERS}
        return Response(body, media_type="application/geo+json", headers=headers)

    def static(self, name: str) -> Response:
        """Return a packaged stylesheet or script, or 404."""
        found = pages.static_file(name)
        if found is None:
            return JSONResponse({"error": f"no such file: {name[:100]}"}, status_code=404)
        return Response(found[0], media_type=found[1], headers={"Cache-Control": "max-age=3600"})

    def signin_form(self, *, error: str | None = None, status: int = 200) -> Response:
        """Return the sign-in page."""
        html = pages.render_signin(self.view, error=error)
        return HTMLResponse(html, status_code=status, headers=_HEADERS)

    async def signin(self, request: Request) -> Response:
        """Set the session cookie for a right credential; refuse a wrong one (401, 429)."""
        client = request.client.host if request.client else "unknown"
        now = time.time()
        if self.failures.blocked(client, now=now):
            wait = self.failures.retry_after(client, now=now)
            response = self.signin_form(error=MSG_TOO_MANY.format(seconds=wait), status=429)
            response.headers["Retry-After"] = str(wait)
            return response
        try:
            form = await request.form()
            credential = form.get("credential")
        except Exception:  # noqa: BLE001 - any unreadable body is the client's error
            return JSONResponse({"error": MSG_BAD_FORM}, status_code=400)
        if not isinstance(credential, str) or not check_credential(credential, self.tokens):
            self.failures.record(client, now=now)
            return self.signin_form(error=MSG_WRONG_CREDENTIAL, status=401)
        response = RedirectResponse("/", status_code=303, headers=_HEADERS)
        secure = request.url.scheme == "https"
        session = issue_session(self.key, now=now)
        response.headers["Set-Cookie"] = cookie_header(session, secure=secure)
        return response

    def signout(self, request: Request) -> Response:
        """Clear the session cookie and return to the sign-in form."""
        response = RedirectResponse("/signin", status_code=303, headers=_HEADERS)
        response.headers["Set-Cookie"] = clear_cookie_header(secure=request.url.scheme == "https")
        return response

    def docs(self) -> Response:
        """Return the Swagger page (its packaged script needs no other host)."""
        return HTMLResponse(pages.render_docs())
