import json

import numpy as np
import pandas as pd
import pytest

from training.forecaster import ServedStack
from training.stacking import (
    NO_ROWS,
    STACKED,
    StackingError,
    choose_served,
    fit_stack,
    fit_stack_weights,
    served_stack,
    stack_dispersion,
    weights_words,
)


def test_weights_recover_a_known_mixture():
    rng = np.random.default_rng(0)
    a = rng.gamma(2.0, 1.5, 20_000)
    b = rng.gamma(1.0, 3.0, 20_000)
    y = rng.poisson(0.7 * a + 0.3 * b)
    w = fit_stack_weights(np.column_stack([a, b]), y)
    assert (w >= 0).all()
    np.testing.assert_allclose(w, [0.7, 0.3], atol=0.03)


def test_a_pure_noise_component_gets_about_zero_weight():
    rng = np.random.default_rng(1)
    truth = rng.gamma(2.0, 1.0, 20_000)
    noise = rng.gamma(2.0, 1.0, 20_000)  # same scale, unrelated to the outcome
    y = rng.poisson(truth)
    w = fit_stack_weights(np.column_stack([truth, noise]), y)
    assert w[1] < 0.03
    assert w[0] == pytest.approx(1.0, abs=0.03)


def test_rows_with_missing_values_are_left_out_and_nothing_to_learn_is_an_error():
    mu = np.array([[1.0, 2.0], [np.nan, 1.0], [2.0, 4.0]])
    y = np.array([1.0, 5.0, 2.0])
    w = fit_stack_weights(mu, y)
    assert w[0] * 1 + w[1] * 2 == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(StackingError, match=NO_ROWS):
        fit_stack_weights(np.full((3, 2), np.nan), y)


def test_dispersion_is_near_zero_for_poisson_and_positive_for_overdispersed_counts():
    rng = np.random.default_rng(2)
    mu = np.full(50_000, 3.0)
    assert stack_dispersion(mu, rng.poisson(mu)) < 0.02
    nb = rng.negative_binomial(2.0, 2.0 / (2.0 + mu))  # dispersion 1/2
    assert stack_dispersion(mu, nb) == pytest.approx(0.5, abs=0.05)


def _margins(pai_ci_high: float) -> pd.DataFrame:
    rows = []
    for comp in ("model", "poisson_glm"):
        rows.append(("poisson_deviance", 1, comp, -0.01, -0.02, 0.001))
        rows.append(("pai_area_5", 1, comp, 0.1, -0.2, 0.3))
        high = pai_ci_high if comp == "poisson_glm" else 0.2
        rows.append(("pai_area_10", 1, comp, high - 0.2, high - 0.4, high))
    frame = pd.DataFrame(
        rows, columns=["metric", "horizon", "comparator", "difference", "ci_low", "ci_high"]
    )
    return frame.assign(method=STACKED)


def test_the_combination_is_served_when_no_component_beats_it():
    choice = choose_served(_margins(pai_ci_high=0.1))
    assert choice.method == STACKED
    assert "at least as good" in choice.reason_words
    assert len(choice.evidence) == 6


def test_a_single_component_is_served_when_the_combination_loses_on_pai():
    choice = choose_served(_margins(pai_ci_high=-0.05))
    assert choice.method == "poisson_glm"
    assert "PAI at 10%" in choice.reason_words
    assert any(e["worse"] for e in choice.evidence)


def _forecasts(n_weeks=30, seed=3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    weeks = pd.date_range("2024-01-01", periods=n_weeks, freq="7D")
    for h in (1, 2):
        for w in weeks:
            a, b = rng.gamma(2.0, 1.0, 40), rng.gamma(2.0, 1.0, 40)
            y = rng.poisson(0.5 * a + 0.5 * b)
            for method, mu in (("model", a), ("poisson_glm", b)):
                codes = [f"A{i}" for i in range(40)]
                target = w + pd.Timedelta(weeks=h)
                frame = {"method": method, "area_code": codes, "origin_week": w,
                         "target_week": target, "horizon": h, "mu": mu, "y": y}  # fmt: skip
                rows.append(pd.DataFrame(frame))
    return pd.concat(rows, ignore_index=True)


def test_fit_stack_per_horizon_and_served_stack_follow_the_choice():
    forecasts = _forecasts()
    weights, dispersion, n_rows = fit_stack(forecasts, ("model", "poisson_glm"))
    assert set(weights) == {1, 2} and n_rows[1] == 30 * 40
    np.testing.assert_allclose(weights[1], [0.5, 0.5], atol=0.1)
    alone = served_stack(forecasts, choose_served(_margins(-0.05)), ("model", "poisson_glm"))
    assert alone.served_method == "poisson_glm"
    assert alone.weights[1] == (0.0, 1.0)
    assert alone.stacked_weights[1] == pytest.approx(tuple(weights[1]))
    assert ServedStack.from_json(alone.to_json()) == alone
    both = served_stack(forecasts, choose_served(_margins(0.1)), ("model", "poisson_glm"))
    assert "combines the model (weight 0." in weights_words(both)


def test_final_stack_is_written_beside_the_model_and_a_stale_one_removed(tmp_path):
    from training.stacking import final_stack, write_stack

    forecasts = _forecasts()
    margins = _margins(pai_ci_high=0.1)
    margins["comparator"] = margins["comparator"].replace({"poisson_glm": "hawkes"})
    components = ("model", "poisson_glm", "hawkes", "prospective_hotspot")
    extra = forecasts.loc[forecasts["method"] == "poisson_glm"]
    forecasts = pd.concat(
        [forecasts, extra.assign(method="hawkes"), extra.assign(method="prospective_hotspot")]
    )
    stack = final_stack(forecasts, margins)
    assert stack.served_method == STACKED and stack.components == components
    path = write_stack(stack, tmp_path)
    assert ServedStack.from_json(json.loads(path.read_text())) == stack
    assert write_stack(None, tmp_path) is None and not path.exists()


def test_train_writes_the_stack_from_the_backtest_outputs(tmp_path):
    from harmcast.commands.modelling import _write_served_stack
    from training.backtest.run import STACK_FORECASTS
    from training.config import load_params

    params = load_params(root=tmp_path)
    backtest, models = params.paths.resolve("backtest"), params.paths.resolve("models")
    backtest.mkdir(parents=True)
    models.mkdir(parents=True)
    assert _write_served_stack(params, models) is None  # no backtest: the booster is served
    forecasts = _forecasts()
    extra = forecasts.loc[forecasts["method"] == "poisson_glm"]
    forecasts = pd.concat(
        [forecasts, extra.assign(method="hawkes"), extra.assign(method="prospective_hotspot")]
    )
    forecasts.to_parquet(backtest / STACK_FORECASTS)
    margins = _margins(pai_ci_high=-0.05)
    overall = margins.assign(horizon="all")
    records = json.loads(pd.concat([margins, overall]).to_json(orient="records"))
    (backtest / "results.json").write_text(json.dumps({"summary": {}, "margins": records}))
    stack = _write_served_stack(params, models)
    assert stack.served_method == "poisson_glm"
    written = json.loads((models / "stack.json").read_text())
    assert written["served_method"] == "poisson_glm"
    assert written["weights"]["1"] == [0.0, 1.0, 0.0, 0.0]
