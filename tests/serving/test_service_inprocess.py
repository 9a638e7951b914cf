from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import BOARD_TOKEN as BOARD
from conftest import PLANNER_TOKEN as PLANNER
from starlette.testclient import TestClient

from serving.auth import MSG_FORBIDDEN, MSG_MISSING, MSG_UNKNOWN
from serving.schemas import MSG_AREAS_AND_TOP_K, MSG_WEEK_HORIZON


def error_text(response) -> str:
    return str(response.json())


@pytest.fixture(scope="module")
def client(asgi_app):
    with TestClient(asgi_app) as test_client:
        yield test_client


def post(client, path, body, token=PLANNER):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(path, json=body, headers=headers)


def snapshot_row(city, area, horizon=1):
    frame = city.snapshots[2].frame
    return frame[(frame["area_code"] == area) & (frame["horizon"] == horizon)].iloc[0]


def test_default_forecast_is_next_week_for_all_areas_by_rank(city, client):
    response = post(client, "/forecast", {})
    assert response.status_code == 200, response.text
    body = response.json()
    origin = city.features["origin_week"].max()
    assert body["horizon"] == 1
    assert body["target_week"] == (origin + np.timedelta64(7, "D")).date().isoformat()
    assert body["model"] == {"name": "harmcast-violence", "version": "2"}
    forecasts = body["forecasts"]
    assert len(forecasts) == len(city.areas)
    assert [f["rank"] for f in forecasts] == list(range(1, len(city.areas) + 1))
    assert sum(f["hotspot"] for f in forecasts) == 4
    latest = city.features[
        (city.features["origin_week"] == origin) & (city.features["horizon"] == 1)
    ]
    mu = dict(zip(latest["area_code"], city.forecasters[2].predict(latest)["mu"], strict=True))
    for f in forecasts:
        assert f["expected_count"] == pytest.approx(mu[f["area_code"]], rel=1e-12)
        assert f["interval"]["lower"] <= f["expected_count"] <= f["interval"]["upper"] + 1
        assert 0 < f["p_any"] < 1
        assert "drivers" not in f


def test_explanations_are_plain_words_and_add_up(client):
    response = post(client, "/forecast", {"top_k": 5, "horizon": 3, "explain": True})
    assert response.status_code == 200
    for f in response.json()["forecasts"]:
        total = sum(f["contributions"].values()) + f["bias"]
        assert total == pytest.approx(math.log(f["expected_count"]), abs=1e-6)
        assert len(f["drivers"]) == 3
        for driver in f["drivers"]:
            assert driver["direction"] in ("raises", "lowers")
            assert driver["text"].startswith(driver["description"])
            assert driver["contribution"] == f["contributions"][driver["feature"]]


def test_areas_and_weeks_select_rows(city, client):
    origin = city.features["origin_week"].max()
    week = (origin + np.timedelta64(14, "D")).date()
    iso = f"{week.isocalendar().year}-W{week.isocalendar().week:02d}"
    for body in ({"week": iso}, {"week": week.isoformat(), "horizon": 2}):
        response = post(client, "/forecast", {**body, "areas": ["SYN00003", "SYN00001"]})
        assert response.status_code == 200, response.text
        got = response.json()
        assert got["horizon"] == 2
        codes = {f["area_code"] for f in got["forecasts"]}
        assert codes == {"SYN00001", "SYN00003"}
        for f in got["forecasts"]:
            assert f["rank"] == snapshot_row(city, f["area_code"], 2)["rank"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"areas": ["SYN00001", "E01000001", "NOPE"]}, "unknown area codes: E01000001, NOPE"),
        ({"week": "2030-W01"}, "outside the forecast snapshot"),
        ({"week": "2024-07-30"}, "not a Monday"),
        ({"week": "next week"}, "ISO week"),
        ({"horizon": 5}, "less than or equal to 4"),
        ({"horizon": 0}, "greater than or equal to 1"),
        ({"top_k": 0}, "greater than or equal to 1"),
        ({"top_k": 3, "areas": ["SYN00001"]}, MSG_AREAS_AND_TOP_K),
        ({"explain": "maybe"}, "bool"),
        ({"colour": "red"}, "xtra"),
    ],
)
def test_bad_requests_are_400_with_a_message(client, body, needle):
    response = post(client, "/forecast", body)
    assert response.status_code == 400
    assert needle in error_text(response)
    assert "Traceback" not in response.text


def test_week_and_horizon_must_agree(city, client):
    origin = city.features["origin_week"].max()
    week = (origin + np.timedelta64(7, "D")).date().isoformat()
    response = post(client, "/forecast_geojson", {"week": week, "horizon": 3})
    assert response.status_code == 400
    expected = MSG_WEEK_HORIZON.format(
        week=week, expected=1, origin=origin.date().isoformat(), horizon=3
    )
    assert expected in error_text(response)


def test_geojson_has_points_at_centroids(city, client):
    response = post(client, "/forecast_geojson", {"areas": ["SYN00002"], "explain": True})
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "FeatureCollection"
    (feature,) = body["features"]
    area = city.areas.set_index("area_code").loc["SYN00002"]
    assert feature["geometry"] == {"type": "Point", "coordinates": [area.longitude, area.latitude]}
    assert feature["properties"]["expected_count"] == snapshot_row(city, "SYN00002")["mu"]
    assert feature["properties"]["drivers"]


def test_tokens_and_roles(client):
    for path in ("/forecast", "/forecast_geojson"):
        missing = post(client, path, {}, token=None)
        assert missing.status_code == 401 and missing.json() == {"error": MSG_MISSING}
        assert missing.headers["www-authenticate"].startswith("Bearer")
        wrong = post(client, path, {}, token="not-a-token")
        assert wrong.status_code == 401 and wrong.json() == {"error": MSG_UNKNOWN}
        board = post(client, path, {}, token=BOARD)
        assert board.status_code == 403
        assert board.json() == {
            "error": MSG_FORBIDDEN.format(role="board", path=path, allowed="planner")
        }
    assert client.get("/areas").status_code == 401


def test_cards_are_public_and_match_the_published_card(city, client):
    card = client.get("/model_card")
    assert card.status_code == 200
    published = (city.cards_root / "harmcast-violence" / "v2" / "card.json").read_text()
    assert card.json() == __import__("json").loads(published)
    html = client.get("/model_card.html")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "harmcast-violence v2" in html.text


def test_areas_lists_codes_names_districts_only(city, client):
    response = client.get("/areas", headers={"Authorization": f"Bearer {PLANNER}"})
    assert response.status_code == 200
    areas = response.json()
    assert [a["area_code"] for a in areas] == sorted(city.areas["area_code"])
    assert set(areas[0]) == {"area_code", "area_name", "district"}


def test_health_and_metrics_stay_open(client):
    # /metrics is served by the server process, checked in test_server.py
    for path in ("/healthz", "/livez", "/readyz", "/docs.json"):
        assert client.get(path).status_code == 200, path
