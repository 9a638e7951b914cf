"""The review desk's web app: pages for the board, passkey ceremonies under ``/api``.

Every page but sign-in and enrolment needs a session. Pages are server-rendered
(Jinja); the only script is ``static/desk.js`` (passkey ceremonies), and
nothing is loaded from another origin.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from governance.desk import ledger
from governance.desk.amendments import open_amendments
from governance.desk.ceremonies import ceremony_router
from governance.desk.sessions import FailureLimiter, SessionStore
from governance.desk.settings import DeskSettings
from governance.desk.versions import version_page, versions_overview
from governance.review import production_version
from training.errors import HarmcastError

__all__ = ["create_app", "COOKIE", "SECURITY_HEADERS"]

COOKIE = "harmcast_board"
_HERE = Path(__file__).parent
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _member(request: Request) -> str | None:
    session = request.app.state.sessions.get(request.cookies.get(COOKIE))
    return session.member if session else None


def _page(request: Request, name: str, **context) -> HTMLResponse:
    settings: DeskSettings = request.app.state.settings
    return request.app.state.templates.TemplateResponse(
        request,
        name,
        {"member": _member(request), "names": ledger.roster(settings),
         "model": settings.model_name, **context},
    )  # fmt: skip


def _pages(app: FastAPI) -> None:
    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> Response:
        if _member(request) is None:
            return RedirectResponse("/signin", status_code=303)
        settings = request.app.state.settings
        pending, past = versions_overview(settings)
        prod = production_version(model_name=settings.model_name,
                                  tracking_uri=settings.tracking_uri)  # fmt: skip
        return _page(request, "index.html.j2", pending=pending, past=past, production=prod,
                     amendments=open_amendments(settings))  # fmt: skip

    @app.get("/versions/{version}", response_class=HTMLResponse)
    def version(request: Request, version: int) -> Response:
        if _member(request) is None:
            return RedirectResponse("/signin", status_code=303)
        settings = request.app.state.settings
        page = version_page(settings, str(version))
        try:
            decisions, problem = ledger.decisions(settings, str(version)), None
        except HarmcastError as exc:
            decisions, problem = [], str(exc)
        return _page(request, "version.html.j2", page=page, decisions=decisions, problem=problem,
                     quorum=ledger.policy_of(settings).board.quorum)  # fmt: skip

    @app.get("/signin", response_class=HTMLResponse)
    def signin(request: Request) -> Response:
        return _page(request, "signin.html.j2")

    @app.get("/enrol", response_class=HTMLResponse)
    def enrol(request: Request) -> Response:
        return _page(request, "enrol.html.j2")

    @app.post("/signout")
    def signout(request: Request) -> Response:
        request.app.state.sessions.end(request.cookies.get(COOKIE))
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response


def create_app(settings: DeskSettings) -> FastAPI:
    """Build the desk app over ``settings`` (no I/O until a request arrives)."""
    app = FastAPI(title="harmcast board desk", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.sessions = SessionStore(settings.session_s)
    app.state.limiter = FailureLimiter(settings.max_failures, settings.lockout_s)
    app.state.pending_enrolments = {}
    app.state.pending_signins = {}
    app.state.templates = Jinja2Templates(directory=_HERE / "templates")
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(HarmcastError)
    async def refused(request: Request, exc: HarmcastError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=403)

    _pages(app)
    app.include_router(ceremony_router(COOKIE))
    return app
