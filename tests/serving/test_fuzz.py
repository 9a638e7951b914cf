"""Schemathesis over the service's own OpenAPI document (the in-process ASGI app, no
network), with every check it has: the document must say what the service does."""

from __future__ import annotations

import schemathesis
from conftest import PLANNER_TOKEN as TOKEN
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import CHECKS, load_all_checks

AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES = 60  # per operation and mode: bounded, a few seconds each


def all_checks():
    load_all_checks()
    return [check for check in CHECKS.get_all() if callable(check) and not isinstance(check, type)]


def run_operation(operation, calls, *, auth=AUTH, examples=EXAMPLES, **call):  # noqa: D103
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(modes[0]) | operation.as_strategy(modes[1]))
    def run(case):
        response = case.call(headers=auth, **call)
        calls.append((operation.label, response.status_code))
        case.validate_response(response, checks=all_checks(), headers=auth)
        assert "Traceback" not in response.text

    run()


def test_every_route_keeps_every_schemathesis_check(asgi_app):
    # /metrics needs the Prometheus folder `bentoml serve` creates: not served in process
    schema = schemathesis.openapi.from_asgi("/docs.json", asgi_app).exclude(path="/metrics")
    calls: list[tuple[str, int]] = []
    for result in schema.get_all_operations():
        run_operation(result.ok(), calls)
    forecast = [code for label, code in calls if label == "POST /forecast"]
    assert 200 in forecast and 400 in forecast
    assert {label for label, _ in calls} >= {
        "POST /forecast",
        "POST /forecast_geojson",
        "GET /areas",
    }


MEDIA_TYPES = [
    "multipart/form-data",
    "multipart/form-data; boundary=xyz",
    "multipart/form-data; boundary=",
    "application/x-www-form-urlencoded",
    "text/plain",
    "application/octet-stream",
]


def test_bodies_that_are_not_json_are_refused_with_a_4xx(asgi_app):
    """The class of the filed 500: a multipart (or any non-JSON) body that is not valid."""
    from hypothesis import strategies as st
    from starlette.testclient import TestClient

    with TestClient(asgi_app, raise_server_exceptions=False) as client:

        @settings(max_examples=60, deadline=None, database=None, derandomize=True)
        @given(
            path=st.sampled_from(["/forecast", "/forecast_geojson"]),
            media_type=st.sampled_from(MEDIA_TYPES),
            body=st.binary(max_size=200)
            | st.just(b"--xyz\r\nContent-Disposition: form-data\r\n\r\n")
            | st.just(b"--xyz\r\nContent-Disposition: form-data; name=top_k\r\n\r\n3\r\n--xyz--"),
        )
        def run(path, media_type, body):
            response = client.post(path, content=body, headers={**AUTH, "Content-Type": media_type})
            assert 400 <= response.status_code < 500, (media_type, body, response.text)
            assert response.json()["detail"][0]["loc"] == ["header", "content-type"]

        run()
