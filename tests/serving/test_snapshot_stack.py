"""A snapshot built with a stack serves the chosen forecast; without one, the booster."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from serving.snapshot import build_snapshot
from tests.serving.conftest import make_areas, make_features, train_forecaster
from training.errors import SchemaError
from training.forecaster import STACK_FILE, Forecaster, ServedStack, nb_summary

STACK = ServedStack(
    "stacked",
    ("model", "poisson_glm", "hawkes"),
    {h: (0.5, 0.5, 0.0) for h in (1, 2, 3, 4)},
    {h: 0.3 for h in (1, 2, 3, 4)},
    reason="The combination is served.",
)


@pytest.fixture(scope="module")
def inputs():
    areas = make_areas()
    features = make_features(areas)
    forecaster = train_forecaster(features, rounds=5, seed=0)
    latest = features.loc[features["origin_week"] == features["origin_week"].max()]
    glm = latest[["area_code", "horizon"]].assign(method="poisson_glm", mu=2.0)
    return areas, features, forecaster, latest, glm


def test_a_snapshot_with_a_stack_serves_the_combined_forecast(inputs, tmp_path):
    areas, features, forecaster, latest, glm = inputs
    forecaster.save(tmp_path)
    (tmp_path / STACK_FILE).write_text(json.dumps(STACK.to_json()))
    stacked = Forecaster.load(tmp_path)
    assert stacked.stack == STACK
    snap = build_snapshot(features, stacked, areas, policy_coverage=0.1, components=glm)
    model_mu = forecaster.predict(latest).assign(
        area_code=latest["area_code"].to_numpy(), horizon=latest["horizon"].to_numpy()
    )
    merged = snap.frame.merge(model_mu, on=["area_code", "horizon"], suffixes=("", "_model"))
    expected = 0.5 * merged["mu_model"] + 0.5 * 2.0
    np.testing.assert_allclose(merged["mu"], expected, rtol=1e-9)
    summary = nb_summary(expected.to_numpy(), 0.3, forecaster.interval)
    np.testing.assert_allclose(merged["q_hi"], summary["q_hi"])
    np.testing.assert_allclose(merged["p_any"], summary["p_any"])
    assert snap.meta.served_method == "stacked"
    assert snap.meta.weights["1"] == {"model": 0.5, "poisson_glm": 0.5}
    plain = build_snapshot(features, forecaster, areas, policy_coverage=0.1)
    assert plain.meta.served_method == "model" and plain.meta.weights == {}
    assert not np.allclose(plain.frame["mu"].sort_values(), snap.frame["mu"].sort_values())


def test_a_stack_without_its_components_is_refused(inputs):
    areas, features, forecaster, _, glm = inputs
    stacked = replace(forecaster, stack=STACK)
    with pytest.raises(SchemaError, match="no forecast of component 'poisson_glm'"):
        build_snapshot(features, stacked, areas, policy_coverage=0.1)
    partial = glm.loc[glm["horizon"] != 4]
    with pytest.raises(SchemaError, match="at horizon 4"):
        build_snapshot(features, stacked, areas, policy_coverage=0.1, components=partial)


def test_the_briefing_provenance_names_the_served_forecast(inputs):
    from serving.briefing.view import provenance

    areas, features, forecaster, _, glm = inputs
    stacked = replace(forecaster, stack=STACK)
    snap = build_snapshot(features, stacked, areas, policy_coverage=0.1, components=glm)
    approval = {"name": "harmcast-violence", "version": 3, "tags": {}}
    assert "combined with the analysts' fitted baselines" in provenance(approval, snap).served
    plain = build_snapshot(features, forecaster, areas, policy_coverage=0.1)
    assert provenance(approval, plain).served == ""


def test_the_briefing_history_and_previous_week_are_the_served_forecast(inputs, tmp_path):
    import io

    import pandas as pd

    from serving.briefing.inputs import (
        HISTORY_FILE,
        PREVIOUS_FILE,
        briefing_origins,
        build_briefing_files,
    )

    areas, features, forecaster, _, _ = inputs
    origins = briefing_origins(features)
    at = features.loc[features["origin_week"].isin(origins)]
    glm = at[["area_code", "origin_week", "horizon"]].assign(method="poisson_glm", mu=2.0)
    stacked = replace(forecaster, stack=STACK)
    snap = build_snapshot(features, stacked, areas, policy_coverage=0.1, components=glm)
    files = build_briefing_files(snap, features, stacked, areas, tmp_path, components=glm)
    plain = build_briefing_files(snap, features, forecaster, areas, tmp_path)
    previous = pd.read_parquet(io.BytesIO(files[tmp_path / PREVIOUS_FILE]))
    booster = pd.read_parquet(io.BytesIO(plain[tmp_path / PREVIOUS_FILE]))
    np.testing.assert_allclose(previous["previous_mu"], 0.5 * booster["previous_mu"] + 1.0)
    history = pd.read_parquet(io.BytesIO(files[tmp_path / HISTORY_FILE]))
    booster = pd.read_parquet(io.BytesIO(plain[tmp_path / HISTORY_FILE]))
    np.testing.assert_allclose(history["forecast"], 0.5 * booster["forecast"] + 1.0)
    with pytest.raises(SchemaError, match="no forecast of component"):
        build_briefing_files(snap, features, stacked, areas, tmp_path)
