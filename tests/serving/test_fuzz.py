"""Schemathesis over the service's OpenAPI document (in-process ASGI app): no 5xx."""

from __future__ import annotations

import schemathesis
from conftest import PLANNER_TOKEN as TOKEN
from hypothesis import HealthCheck, given, settings
from schemathesis.core import NOT_SET


def test_fuzz_forecast_endpoints_never_5xx(asgi_app):
    from starlette.testclient import TestClient

    with TestClient(asgi_app) as client:
        document = client.get("/docs.json").json()
        schema = schemathesis.openapi.from_dict(document).include(path_regex="^/forecast")
        calls = []
        for operation in schema.get_all_operations():
            op = operation.ok()

            @settings(
                max_examples=40,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(
                case=op.as_strategy(schemathesis.GenerationMode.POSITIVE)
                | op.as_strategy(schemathesis.GenerationMode.NEGATIVE)
            )
            def run(case):
                body = {} if case.body is NOT_SET else case.body
                payload = {"content": body} if isinstance(body, bytes) else {"json": body}
                response = client.request(
                    case.method,
                    case.formatted_path,
                    **payload,
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
                calls.append(response.status_code)
                assert response.status_code < 500, response.text
                assert "Traceback" not in response.text

            run()
    assert len(calls) >= 40
    assert any(code == 200 for code in calls) and any(code == 400 for code in calls)
