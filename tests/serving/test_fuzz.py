"""Schemathesis over the service's OpenAPI document (in-process ASGI app): no 5xx."""

from __future__ import annotations

import importlib
import os
import secrets

import pytest
import schemathesis
from schemathesis.core import NOT_SET
from hypothesis import HealthCheck, given, settings

TOKEN = secrets.token_urlsafe(16)


@pytest.fixture(scope="module")
def app(city):
    os.environ["HARMCAST_BENTO_MODEL"] = city.bento_tags[2]
    os.environ["HARMCAST_PLANNER_TOKENS"] = TOKEN
    import serving.service

    service = importlib.reload(serving.service)
    return service.HarmcastForecast.to_asgi()


def test_fuzz_forecast_endpoints_never_5xx(app):
    from starlette.testclient import TestClient

    with TestClient(app) as client:
        document = client.get("/docs.json").json()
        schema = schemathesis.openapi.from_dict(document).include(
            path_regex="^/forecast"
        )
        calls = []
        for operation in schema.get_all_operations():
            op = operation.ok()

            @settings(max_examples=40, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))  # fmt: skip
            @given(case=op.as_strategy(schemathesis.GenerationMode.POSITIVE)
                   | op.as_strategy(schemathesis.GenerationMode.NEGATIVE))  # fmt: skip
            def run(case):
                body = {} if case.body is NOT_SET else case.body
                payload = {"content": body} if isinstance(body, bytes) else {"json": body}
                response = client.request(
                    case.method, case.formatted_path, **payload,
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )  # fmt: skip
                calls.append(response.status_code)
                assert response.status_code < 500, response.text
                assert "Traceback" not in response.text

            run()
    assert len(calls) >= 40
    assert any(code == 200 for code in calls) and any(code == 400 for code in calls)
