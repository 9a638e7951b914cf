import json

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from training.config import ModelParams
from training.errors import SchemaError
from training.model import MISSING_FEATURE, NO_TARGET, Forecaster, fit_forecaster, nb_summary

PARAMS = ModelParams(num_boost_round=60, learning_rate=0.1, num_leaves=7, min_data_in_leaf=20)
COLUMNS = ["x1", "x2", "horizon"]


def simulate(n: int = 6000, dispersion: float = 0.5, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"x1": rng.uniform(0, 2, n), "x2": rng.normal(size=n), "horizon": rng.integers(1, 5, n)}
    )
    mu = np.exp(0.2 + 0.8 * frame["x1"] - 0.1 * frame["horizon"])
    size = 1.0 / dispersion
    frame["y"] = rng.negative_binomial(size, size / (size + mu)).astype(float)
    frame["true_mu"] = mu
    return frame


def test_fit_predicts_expected_counts_and_nb_intervals_near_nominal():
    train, test = simulate(seed=0), simulate(seed=1)
    forecaster = fit_forecaster(train, COLUMNS, PARAMS)
    assert 0.3 < forecaster.dispersion < 0.7
    out = forecaster.predict(test)
    assert list(out.columns) == ["mu", "q_lo", "q_hi", "p_any"]
    assert out.index.equals(test.index)
    assert np.corrcoef(out["mu"], test["true_mu"])[0, 1] > 0.9
    # discrete counts: P(y < q_lo) <= 10% <= P(y <= q_lo), likewise at the top, within noise
    assert (test["y"] < out["q_lo"]).mean() <= 0.12 <= (test["y"] <= out["q_lo"]).mean() + 0.04
    assert (test["y"] > out["q_hi"]).mean() <= 0.12 <= (test["y"] >= out["q_hi"]).mean() + 0.04
    assert (out["q_lo"] <= out["mu"].round() + 1).all() and (out["q_hi"] >= out["q_lo"]).all()
    share_any = (test["y"] >= 1).mean()
    assert out["p_any"].mean() == pytest.approx(share_any, abs=0.03)


def test_nb_summary_tends_to_poisson_and_p_any_is_exact():
    mu = np.array([0.5, 2.0, 8.0])
    poisson = nb_summary(mu, 0.0)
    np.testing.assert_allclose(poisson["p_any"], 1 - np.exp(-mu))
    wide = nb_summary(mu, 1.0)
    np.testing.assert_allclose(wide["p_any"], 1 - (1 / (1 + mu)))
    assert (wide["q_hi"] >= poisson["q_hi"]).all()


def test_training_uses_only_allowed_rows_with_targets():
    frame = simulate(n=2000)
    frame.loc[:99, "y"] = np.nan
    with pytest.raises(SchemaError) as caught:
        fit_forecaster(frame, COLUMNS, PARAMS, rows=np.arange(100))
    assert NO_TARGET in str(caught.value)
    poisoned = frame.copy()
    poisoned.loc[1000:, "y"] = 1000.0
    clean = fit_forecaster(poisoned, COLUMNS, PARAMS, rows=np.arange(1000))
    assert clean.predict(frame)["mu"].max() < 50


def test_save_load_and_from_booster_round_trip(tmp_path):
    frame = simulate(n=2000)
    forecaster = fit_forecaster(frame, COLUMNS, PARAMS)
    forecaster.save(tmp_path)
    meta = json.loads((tmp_path / "model_meta.json").read_text())
    assert meta["feature_names"] == COLUMNS and meta["dispersion"] == forecaster.dispersion
    loaded = Forecaster.load(tmp_path)
    pd.testing.assert_frame_equal(loaded.predict(frame), forecaster.predict(frame))
    assert loaded.params == PARAMS
    rebuilt = Forecaster.from_booster(
        lgb.Booster(model_file=str(tmp_path / "model.lgb")), forecaster.dispersion
    )
    assert rebuilt.feature_names == tuple(COLUMNS)
    shuffled = frame[["horizon", "x2", "x1"]]
    pd.testing.assert_frame_equal(rebuilt.predict(shuffled), forecaster.predict(frame))
    with pytest.raises(SchemaError) as caught:
        rebuilt.predict(frame.drop(columns="x2"))
    assert MISSING_FEATURE in str(caught.value) and "'x2'" in str(caught.value)
    with pytest.raises(SchemaError, match="model file not found"):
        Forecaster.load(tmp_path / "absent")


def test_sensitive_columns_are_refused():
    frame = simulate(n=500).assign(audit_share_black=0.3)
    with pytest.raises(ValueError, match="audit_share_black"):
        fit_forecaster(frame, [*COLUMNS, "audit_share_black"], PARAMS)
