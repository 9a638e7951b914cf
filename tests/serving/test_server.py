"""The real ``bentoml serve`` process on a free loopback port (started once)."""

from __future__ import annotations

import math
import secrets

import bentoml
import httpx
import numpy as np
import pytest
from conftest import start_server, wait_ready

pytestmark = pytest.mark.slow

PLANNER = secrets.token_urlsafe(16)
BOARD = secrets.token_urlsafe(16)
OPERATOR = secrets.token_urlsafe(16)


@pytest.fixture(scope="module")
def server(city, tmp_path_factory):
    env = {
        "HARMCAST_TRACKING_URI": city.uri,
        "HARMCAST_PLANNER_TOKENS": PLANNER,
        "HARMCAST_BOARD_TOKENS": BOARD,
        "HARMCAST_METRICS_TOKENS": OPERATOR,
    }
    log = tmp_path_factory.mktemp("server") / "server.log"
    running = start_server(city, city.bento_tags[2], env, log)
    try:
        assert wait_ready(running), running.output()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def client(server):
    with bentoml.SyncHTTPClient(server.url, token=PLANNER, server_ready_timeout=60) as c:
        yield c


def latest_predictions(city, version, horizon):
    features = city.features
    latest = features[(features["origin_week"] == features["origin_week"].max())]
    latest = latest[latest["horizon"] == horizon]
    predicted = city.forecasters[version].predict(latest)
    return predicted.assign(area_code=latest["area_code"].to_numpy()).set_index("area_code")


def test_forecasts_match_in_process_forecaster(city, client):
    body = client.forecast(horizon=2)
    expected = latest_predictions(city, 2, 2)
    assert len(body["forecasts"]) == len(expected)
    for f in body["forecasts"]:
        row = expected.loc[f["area_code"]]
        assert f["expected_count"] == pytest.approx(row["mu"], rel=1e-12)
        assert f["interval"] == {"lower": row["q_lo"], "upper": row["q_hi"]}
        assert f["p_any"] == pytest.approx(row["p_any"], rel=1e-12)


def test_explanations_add_up_over_http(client):
    body = client.forecast(areas=["SYN00004", "SYN00009"], explain=True)
    assert {f["area_code"] for f in body["forecasts"]} == {"SYN00004", "SYN00009"}
    for f in body["forecasts"]:
        total = sum(f["contributions"].values()) + f["bias"]
        assert total == pytest.approx(math.log(f["expected_count"]), abs=1e-6)
        assert [d["direction"] in ("raises", "lowers") for d in f["drivers"]] == [True] * 3


def test_plain_http_roles_and_errors(server):
    url = server.url
    assert httpx.post(f"{url}/forecast", json={}).status_code == 401
    board = httpx.post(f"{url}/forecast", json={}, headers={"Authorization": f"Bearer {BOARD}"})
    assert board.status_code == 403 and "board role" in board.json()["error"]
    planner = {"Authorization": f"Bearer {PLANNER}"}
    unknown = httpx.post(f"{url}/forecast", json={"areas": ["XX1", "SYN00001"]}, headers=planner)
    assert unknown.status_code == 400 and "unknown area codes: XX1" in unknown.text
    late = httpx.post(f"{url}/forecast", json={"week": "2031-W02"}, headers=planner)
    assert late.status_code == 400 and "outside the forecast snapshot" in late.text
    top = httpx.post(f"{url}/forecast_geojson", json={"top_k": 3}, headers=planner)
    assert top.status_code == 200
    assert [f["properties"]["rank"] for f in top.json()["features"]] == [1, 2, 3]


def test_cards_areas_health_and_metrics(city, server):
    url = server.url
    card = httpx.get(f"{url}/model_card")
    assert card.status_code == 200 and card.json()["version"] == 2
    assert "v2" in httpx.get(f"{url}/model_card.html").text
    areas = httpx.get(f"{url}/areas", headers={"Authorization": f"Bearer {PLANNER}"}).json()
    assert len(areas) == len(city.areas)
    assert not any(k.startswith("audit_") for a in areas for k in a)
    for path in ("/healthz", "/livez", "/readyz"):
        assert httpx.get(url + path).status_code == 200
    assert httpx.get(f"{url}/metrics").status_code == 401
    metrics = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {OPERATOR}"})
    assert metrics.status_code == 200 and 'route="/model_card"' in metrics.text


def test_startup_log_names_the_verified_version(server):
    assert "serving harmcast-violence version 2" in server.output()
    assert "registry check: passed" in server.output()


def test_hotspots_cover_ten_percent(client):
    flags = [f["hotspot"] for f in client.forecast()["forecasts"]]
    assert sum(flags) == 4 and all(flags[:4])
    assert np.mean(flags) == pytest.approx(0.1)


def test_schemathesis_every_check_against_the_real_server(server):
    """The same checks as test_fuzz.py, over loopback HTTP, BentoML's own routes included."""
    import schemathesis
    from test_fuzz import run_operation

    schema = schemathesis.openapi.from_url(f"{server.url}/docs.json")
    calls: list[tuple[str, int]] = []
    for result in schema.get_all_operations():
        auth = {"Authorization": f"Bearer {PLANNER}"}
        run_operation(result.ok(), calls, auth=auth, examples=15, base_url=server.url)
    assert {label for label, _ in calls} >= {"POST /forecast", "GET /metrics", "GET /healthz"}
