"""The OpenAPI document says what the service does: its security, its 400s, its body."""

from __future__ import annotations

import jsonschema_rs
import pandas as pd
import pytest
from conftest import PLANNER_TOKEN
from starlette.testclient import TestClient

from serving.openapi import BEARER, request_schema

AUTH = {"Authorization": f"Bearer {PLANNER_TOKEN}"}


@pytest.fixture(scope="module")
def client(asgi_app):
    with TestClient(asgi_app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def doc(client):
    return client.get("/docs.json").json()


def resolve(doc, schema):
    ref = schema.get("$ref", "")
    return doc["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


def test_a_bearer_scheme_guards_the_protected_operations_only(doc):
    assert doc["components"]["securitySchemes"][BEARER] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"][BEARER]["description"],
    }
    forecast = doc["paths"]["/forecast"]["post"]
    assert forecast["security"] == [{BEARER: []}] and forecast["x-harmcast-roles"] == ["planner"]
    assert {"401", "403"} <= set(forecast["responses"])
    assert doc["paths"]["/healthz"]["get"]["security"] == []


@pytest.mark.parametrize(
    "body",
    [{"areas": ["SYN00001"], "top_k": 2}, {"areas": ["NOPE"]}, {"explain": "yes"}, {"top_k": True}],
)
def test_400_answers_match_the_documented_schema(client, doc, body):
    response = client.post("/forecast", json=body, headers=AUTH)
    assert response.status_code == 400, response.text
    documented = doc["paths"]["/forecast"]["post"]["responses"]["400"]
    schema = resolve(doc, documented["content"]["application/json"]["schema"])
    jsonschema_rs.validate(schema, response.json())
    assert isinstance(response.json()["detail"], list)


def test_the_body_schema_says_areas_and_top_k_exclude_each_other(doc):
    schema = doc["paths"]["/forecast"]["post"]["requestBody"]["content"]["application/json"]
    body = schema["schema"]
    # OpenAPI 3.0 `nullable` as JSON Schema, to validate with jsonschema
    plain = request_schema()
    for prop in plain["properties"].values():
        if prop.pop("nullable", False):
            prop["type"] = [prop["type"], "null"]
    for instance, valid in [
        ({"areas": ["A"], "top_k": 3}, False),
        ({"areas": ["A"], "top_k": None}, True),
        ({"areas": None, "top_k": 3}, True),
        ({"top_k": 3}, True),
    ]:
        assert jsonschema_rs.Draft7Validator(plain).is_valid(instance) is valid, instance
    assert body["not"]["required"] == ["areas", "top_k"]
    assert "exclude each other" in body["description"]


def test_the_body_schema_names_the_snapshots_areas_and_weeks(doc, city):
    body = doc["paths"]["/forecast"]["post"]["requestBody"]["content"]["application/json"]
    props = body["schema"]["properties"]
    assert props["areas"]["items"]["enum"] == sorted(city.areas["area_code"])
    origin = city.features["origin_week"].max()
    first = (origin + pd.Timedelta(weeks=1)).date().isoformat()
    assert first in props["week"]["enum"] and None in props["week"]["enum"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"explain": "yes"}, "explain"), ({"top_k": True}, "top_k"), ({"horizon": "2"}, "horizon")],
)
def test_request_types_are_strict(client, body, field):
    response = client.post("/forecast", json=body, headers=AUTH)
    assert response.status_code == 400, response.text
    assert response.json()["detail"][0]["loc"] == [field]
