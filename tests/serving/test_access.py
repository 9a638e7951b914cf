"""Default-deny: every route the service exposes declares its role; /metrics is bounded."""

from __future__ import annotations

import re
import secrets

import httpx
import pytest
from conftest import PLANNER_TOKEN, start_server, wait_ready
from starlette.routing import Mount
from starlette.testclient import TestClient

from serving.auth import (
    MSG_MISSING,
    MSG_NO_ROUTE,
    MSG_UNDECLARED,
    PUBLIC,
    AccessControl,
    RouteTable,
    allow,
    service_routes,
)
from serving.briefing.web import MSG_TOO_MANY, MSG_WRONG_CREDENTIAL
from serving.session import (
    MAX_FAILURES,
    SESSION_SECONDS,
    FailedSignins,
    clear_cookie_header,
    cookie_header,
    issue_session,
    session_key,
    verify_session,
)
from training.config import ServingParams

PLANNER = secrets.token_urlsafe(16)
OPERATOR = secrets.token_urlsafe(16)
_PARAM = re.compile(r"\{\w+(:path)?\}")


def exposed_paths(routes, prefix=""):
    """Every path template an ASGI app answers, BentoML's own and mounted apps' included."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from exposed_paths(included.routes, prefix + route.include_context.prefix)
            continue
        app = getattr(route, "app", None)
        inner = getattr(route, "routes", None) or getattr(app, "routes", None)
        if inner is not None and not hasattr(route, "endpoint"):
            yield from exposed_paths(inner, prefix + route.path.rstrip("/"))
        elif isinstance(route, Mount):  # a mounted app without routes (static files)
            yield prefix + route.path + "/{path:path}"
        elif getattr(route, "path", None) is not None:
            yield prefix + route.path


def example(template: str) -> str:
    return _PARAM.sub("x.css", template)


def test_every_exposed_route_declares_a_role(asgi_app):
    import serving.service

    declared = service_routes(serving.service.HarmcastForecast)
    assert all(declared.values()), "every route declares at least one role"
    table = RouteTable({t: r for t, r in declared.items() if r})
    exposed = set(exposed_paths(asgi_app.routes))
    # BentoML's own routes are there and declared too
    assert {"/livez", "/readyz", "/healthz", "/docs.json", "/", "/forecast"} <= exposed
    assert "/metrics" in exposed
    undeclared = sorted(p for p in exposed if table.match(example(p)) is None)
    assert undeclared == []


def test_a_route_without_a_role_stops_the_service():
    def handler():  # a route someone forgot to declare
        return None

    with pytest.raises(ValueError) as caught:
        AccessControl(
            None, routes={"/new": None, "/ok": frozenset({PUBLIC})}, params=ServingParams()
        )
    assert str(caught.value) == MSG_UNDECLARED.format(path="/new")
    with pytest.raises(ValueError):
        allow()
    assert allow(PUBLIC)(handler) is handler


def test_route_table_matches_templates_not_prefixes():
    table = RouteTable({"/a": ["x"], "/static/{name}": ["y"], "/files/{path:path}": ["z"]})
    assert table.template("/a") == "/a"
    assert table.template("/a/b") == "unmatched"
    assert table.template("/static/app.css") == "/static/{name}"
    assert table.template("/static/a/b.css") == "unmatched"
    assert table.template("/files/a/b.css") == "/files/{path:path}"


def test_session_cookie_signed_expiring_and_tied_to_the_credentials():
    key = session_key(["credential-one"])
    value = issue_session(key, now=1000.0)
    assert verify_session(key, value, now=1000.0 + SESSION_SECONDS - 1)
    assert not verify_session(key, value, now=1000.0 + SESSION_SECONDS)
    assert not verify_session(session_key(["credential-two"]), value, now=1001.0)
    tampered = value.replace("v1.", "v1.9", 1)
    assert not verify_session(key, tampered, now=1001.0)
    assert not verify_session(session_key([]), value, now=1001.0), "no planner, no session"


def test_cookie_is_secure_over_tls_and_sign_out_clears_it():
    over_tls = cookie_header("v", secure=True)
    assert over_tls.startswith("harmcast_session=v;") and over_tls.endswith("; Secure")
    assert "HttpOnly" in over_tls and "SameSite=Strict" in over_tls
    assert "Secure" not in cookie_header("v", secure=False)
    assert "Max-Age=0" in clear_cookie_header(secure=False)


def test_failed_signins_are_limited_per_client():
    limiter = FailedSignins(limit=3, window=60.0)
    for t in range(3):
        assert not limiter.blocked("10.0.0.1", now=float(t))
        limiter.record("10.0.0.1", now=float(t))
    assert limiter.blocked("10.0.0.1", now=3.0)
    assert not limiter.blocked("10.0.0.2", now=3.0)
    assert not limiter.blocked("10.0.0.1", now=61.0), "the window slides"


def test_signin_refuses_then_limits_in_process(asgi_app):
    with TestClient(asgi_app) as client:
        assert (
            client.get("/", headers={"Accept": "text/html"}, follow_redirects=False).headers[
                "location"
            ]
            == "/signin"
        )
        assert client.get("/").json() == {"error": MSG_MISSING}
        good = client.post("/signin", data={"credential": PLANNER_TOKEN}, follow_redirects=False)
        assert good.status_code == 303
        cookie = good.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
        assert client.get("/").status_code == 200, "the session cookie admits the planner"
        client.cookies.clear()
        broken = client.post(
            "/signin",
            content=b"--x\r\nnot multipart",
            headers={"Content-Type": "multipart/form-data; boundary=zz"},
        )
        assert broken.status_code == 400
        for _ in range(MAX_FAILURES):
            wrong = client.post("/signin", data={"credential": "guess"})
            if wrong.status_code == 429:
                break
            assert wrong.status_code == 401 and MSG_WRONG_CREDENTIAL in wrong.text
        limited = client.post("/signin", data={"credential": PLANNER_TOKEN})
        assert limited.status_code == 429
        seconds = int(limited.headers["retry-after"])
        assert MSG_TOO_MANY.format(seconds=seconds) in limited.text


@pytest.fixture(scope="module")
def server(city, tmp_path_factory):
    env = {
        "HARMCAST_TRACKING_URI": city.uri,
        "HARMCAST_PLANNER_TOKENS": PLANNER,
        "HARMCAST_METRICS_TOKENS": OPERATOR,
    }
    log = tmp_path_factory.mktemp("access-server") / "server.log"
    running = start_server(city, city.bento_tags[2], env, log)
    try:
        assert wait_ready(running), running.output()
        yield running
    finally:
        running.stop()


@pytest.mark.slow
def test_running_service_denies_by_default(server):
    import serving.service

    declared = service_routes(serving.service.HarmcastForecast)
    for template, roles in declared.items():
        response = httpx.get(server.url + example(template))
        if PUBLIC in roles:
            assert response.status_code not in (401, 403), template
        elif "card_readers" not in roles:
            assert response.status_code == 401, (template, response.status_code)
    unknown = httpx.get(server.url + "/no/such/thing")
    assert unknown.status_code == 404
    assert unknown.json() == {"error": MSG_NO_ROUTE.format(path="/no/such/thing")}
    docs = httpx.get(server.url + "/docs").text
    assert "swagger-ui-bundle.js" in docs and "googletagmanager" not in docs


def metrics(server) -> str:
    response = httpx.get(server.url + "/metrics", headers={"Authorization": f"Bearer {OPERATOR}"})
    assert response.status_code == 200
    return response.text


@pytest.mark.slow
def test_metrics_are_for_the_operator_and_bounded(server):
    assert httpx.get(server.url + "/metrics").status_code == 401
    planner = httpx.get(server.url + "/metrics", headers={"Authorization": f"Bearer {PLANNER}"})
    assert planner.status_code == 403
    with httpx.Client(base_url=server.url) as client:
        for _ in range(5):
            client.get(f"/{secrets.token_hex(8)}")
        before = metrics(server)
        for _ in range(300):
            assert client.get(f"/{secrets.token_hex(8)}").status_code == 404
    after = metrics(server)
    routes = set(re.findall(r'route="([^"]*)"', after))
    assert "unmatched" in routes
    import serving.service

    assert routes <= set(service_routes(serving.service.HarmcastForecast)) | {"unmatched"}
    assert len(after) - len(before) < 1_000, (len(before), len(after))
    assert re.search(r'harmcast_http_requests_total\{[^}]*route="unmatched",status="404"', after)
