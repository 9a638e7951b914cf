import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest
from scipy.stats import poisson
from sklearn.linear_model import PoissonRegressor

from training.baselines.grid import BAD_HORIZONS, DUPLICATE_ROWS, MISSING_COLUMNS
from training.baselines.predict import PREDICTION_COLUMNS, poisson_quantile, predict_baselines
from training.config import BaselineParams
from training.errors import SchemaError

START = pd.Timestamp("2021-01-04")  # a Monday
SIMPLE = [
    "last_week",
    "mean_4",
    "mean_13",
    "prior_52",
    "seasonal_naive",
    "prospective_hotspot",
]


def make_panel(n_areas=4, n_weeks=70, seed=0):
    rng = np.random.default_rng(seed)
    counts = rng.poisson(rng.gamma(2.0, 1.0, size=(n_areas, 1)), size=(n_areas, n_weeks))
    ae = rng.poisson(0.5, size=(n_areas, n_weeks))
    codes = [f"SYN{i:05d}" for i in range(n_areas)]
    weeks = pd.date_range(START, periods=n_weeks, freq="7D")
    panel = pd.DataFrame(
        {
            "area_code": np.repeat(codes, n_weeks),
            "week_start": np.tile(weeks, n_areas),
            "violence": counts.ravel().astype(float),
            "ae_assault": ae.ravel().astype(float),
            "police_other": 1.0,
        }
    )
    return panel, counts.astype(float), ae.astype(float), codes, weeks


def chain_adjacency(codes):
    return pd.DataFrame(
        {"area_code": codes[:-1] + codes[1:], "neighbour_code": codes[1:] + codes[:-1]}
    )


def make_features(counts, codes, weeks, horizons):
    rows = []
    for h in horizons:
        for t in range(4, len(weeks)):
            rows.append(
                pd.DataFrame(
                    {
                        "area_code": codes,
                        "origin_week": weeks[t],
                        "horizon": h,
                        "target_week": weeks[t] + pd.Timedelta(weeks=h),
                        "lag_1": counts[:, t],
                        "mean_4": counts[:, t - 3 : t + 1].mean(axis=1),
                        "y": counts[:, t + h] if t + h < len(weeks) else np.nan,
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def get(pred, method, origin, horizon):
    rows = pred.loc[
        (pred["method"] == method) & (pred["origin_week"] == origin) & (pred["horizon"] == horizon)
    ]
    return rows.sort_values("area_code")


def test_simple_baselines_equal_manual_computation():
    panel, counts, ae, codes, weeks = make_panel()
    adjacency = chain_adjacency(codes)
    params = BaselineParams(hotspot_half_life_weeks=3.0, hotspot_neighbour_weight=0.5)
    t = 60
    pred = predict_baselines(panel, adjacency, [weeks[t]], [1, 3], params=params, methods=SIMPLE)
    assert list(pred.columns) == PREDICTION_COLUMNS
    assert set(pred["method"]) == set(SIMPLE)
    past = counts[:, : t + 1]
    decay = 0.5 ** (1 / 3.0)
    weights = decay ** np.arange(t, -1, -1)
    ewm = (past * weights).sum(axis=1) / weights.sum()
    for h in (1, 3):
        target = weeks[t] + pd.Timedelta(weeks=h)
        iso = target.isocalendar()
        season_week = pd.Timestamp(dt.date.fromisocalendar(iso.year - 1, iso.week, 1))
        neighbours = [[1], [0, 2], [1, 3], [2]]
        hotspot = [(ewm[i] + 0.5 * ewm[nb].mean()) / 1.5 for i, nb in enumerate(neighbours)]
        expected = {
            "last_week": past[:, -1],
            "mean_4": past[:, -4:].mean(axis=1),
            "mean_13": past[:, -13:].mean(axis=1),
            "prior_52": past[:, -52:].mean(axis=1),
            "seasonal_naive": counts[:, weeks.get_loc(season_week)],
            "prospective_hotspot": np.array(hotspot),
        }
        for method, value in expected.items():
            rows = get(pred, method, weeks[t], h)
            assert np.allclose(rows["mu"], np.maximum(value, params.mu_floor)), method
            assert np.allclose(rows["y"], counts[:, t + h])
            assert np.allclose(rows["y_ae"], ae[:, t + h])
            assert (rows["target_week"] == target).all()


def test_short_history_and_targets_beyond_panel():
    panel, counts, _, codes, weeks = make_panel(n_weeks=20)
    pred = predict_baselines(panel, chain_adjacency(codes), [weeks[2], weeks[19]], [1])
    early = get(pred, "mean_13", weeks[2], 1)
    assert np.allclose(early["mu"], np.maximum(counts[:, :3].mean(axis=1), 1e-6))
    seasonal = get(pred, "seasonal_naive", weeks[2], 1)  # a year back is before the panel
    assert np.allclose(seasonal["mu"], get(pred, "prior_52", weeks[2], 1)["mu"])
    assert get(pred, "last_week", weeks[19], 1)["y"].isna().all()


def test_interval_and_probability_come_from_poisson():
    panel, _, _, codes, weeks = make_panel()
    pred = predict_baselines(panel, chain_adjacency(codes), weeks[55:60], [1, 2], methods=SIMPLE)
    mu = pred["mu"].to_numpy()
    assert np.array_equal(pred["q_lo"], poisson.ppf(0.1, mu))
    assert np.array_equal(pred["q_hi"], poisson.ppf(0.9, mu))
    assert np.allclose(pred["p_any"], 1 - np.exp(-mu))


def test_poisson_quantile_matches_scipy_over_a_wide_range():
    mu = np.concatenate([np.geomspace(1e-6, 500, 2000), [0.1, 1.0, 2.0, 7.0]])
    for q in (0.01, 0.1, 0.5, 0.9, 0.99):
        assert np.array_equal(poisson_quantile(q, mu), poisson.ppf(q, mu))


def test_glm_equals_manual_fit_on_known_rows():
    panel, counts, _, codes, weeks = make_panel(n_areas=6, n_weeks=40, seed=2)
    features = make_features(counts, codes, weeks, [1])
    origin = weeks[30]
    pred = predict_baselines(
        panel,
        chain_adjacency(codes),
        [origin],
        [1],
        glm_features=features,
        glm_columns=["lag_1", "mean_4"],
        methods=["poisson_glm"],
    )
    train = features.loc[features["target_week"] <= origin]
    z = np.log1p(train[["lag_1", "mean_4"]].to_numpy())
    mean, std = z.mean(axis=0), z.std(axis=0)
    model = PoissonRegressor(alpha=1e-4, max_iter=300, solver="newton-cholesky")
    model.fit((z - mean) / std, train["y"])
    test = features.loc[features["origin_week"] == origin].sort_values("area_code")
    expected = model.predict((np.log1p(test[["lag_1", "mean_4"]].to_numpy()) - mean) / std)
    assert np.allclose(get(pred, "poisson_glm", origin, 1)["mu"], expected, rtol=1e-6)


def test_oracle_rows_use_expected_violence_at_target_week():
    panel, _, _, codes, weeks = make_panel(n_weeks=30)
    oracle = panel[["area_code", "week_start"]].assign(
        expected_violence=np.arange(len(panel)) / 10.0, expected_ae_assault=0.0
    )
    pred = predict_baselines(panel, chain_adjacency(codes), [weeks[20]], [2], oracle=oracle)
    rows = get(pred, "oracle", weeks[20], 2)
    truth = oracle.loc[oracle["week_start"] == weeks[22]].sort_values("area_code")
    assert np.allclose(rows["mu"], np.maximum(truth["expected_violence"], 1e-6))


def test_no_leakage_from_weeks_after_the_origin():
    panel, counts, _, codes, weeks = make_panel(n_weeks=70, seed=5)
    features = make_features(counts, codes, weeks, [1, 2])
    origins = [weeks[55], weeks[62]]
    kwargs = {"glm_features": features, "glm_columns": ["lag_1", "mean_4"]}
    before = predict_baselines(panel, chain_adjacency(codes), origins, [1, 2], **kwargs)

    rng = np.random.default_rng(99)
    cut = weeks[55]
    changed = panel.copy()
    future = changed["week_start"] > cut
    changed.loc[future, "violence"] = rng.poisson(20, size=future.sum()).astype(float)
    features2 = features.copy()
    late = features2["origin_week"] > cut
    features2.loc[late, ["lag_1", "mean_4"]] = rng.uniform(0, 50, size=(late.sum(), 2))
    unseen = features2["target_week"] > cut
    features2.loc[unseen, "y"] = rng.poisson(20, size=unseen.sum())
    after = predict_baselines(
        changed,
        chain_adjacency(codes),
        origins,
        [1, 2],
        glm_features=features2,
        glm_columns=["lag_1", "mean_4"],
    )
    columns = ["method", "area_code", "horizon", "mu", "q_lo", "q_hi", "p_any"]
    first = before["origin_week"] == cut
    assert set(before.loc[first, "method"]) >= {*SIMPLE, "hawkes", "poisson_glm"}
    pd.testing.assert_frame_equal(
        before.loc[first, columns].reset_index(drop=True),
        after.loc[after["origin_week"] == cut, columns].reset_index(drop=True),
    )
    later = before["origin_week"] == weeks[62]
    assert not np.allclose(before.loc[later, "mu"], after.loc[later, "mu"])  # the test bites


def test_bad_inputs_raise_clear_errors():
    panel, _, _, codes, weeks = make_panel(n_weeks=10)
    adjacency = chain_adjacency(codes)
    with pytest.raises(SchemaError, match=re.escape(MISSING_COLUMNS.format(columns="violence"))):
        predict_baselines(panel.drop(columns="violence"), adjacency, [weeks[5]], [1])
    with pytest.raises(SchemaError, match="duplicate"):
        predict_baselines(pd.concat([panel, panel.head(1)]), adjacency, [weeks[5]], [1])
    with pytest.raises(SchemaError, match="is not a week of the panel"):
        predict_baselines(panel, adjacency, [weeks[-1] + pd.Timedelta(weeks=1)], [1])
    with pytest.raises(ValueError, match=re.escape(BAD_HORIZONS.split("{")[0])):
        predict_baselines(panel, adjacency, [weeks[5]], [0])
    assert "duplicate" in DUPLICATE_ROWS


@pytest.mark.slow
def test_glm_refits_side_by_side_equal_one_at_a_time_with_missing_inputs():
    """Threads change nothing: every refit of every horizon gives the same forecasts,
    and a missing input takes the training median (of the logged column) as before."""
    panel, counts, _, codes, weeks = make_panel(n_areas=8, n_weeks=60, seed=5)
    features = make_features(counts, codes, weeks, [1, 2])
    features.loc[features.index % 7 == 0, "lag_1"] = np.nan
    origins = weeks[36:52]
    common = dict(glm_features=features, glm_columns=["lag_1", "mean_4"], methods=["poisson_glm"])
    one = predict_baselines(
        panel, chain_adjacency(codes), origins, [1, 2], params=BaselineParams(threads=1), **common
    )
    two = predict_baselines(
        panel, chain_adjacency(codes), origins, [1, 2], params=BaselineParams(threads=2), **common
    )
    pd.testing.assert_frame_equal(one, two)
    origin = origins[0]
    train = features.loc[(features["target_week"] <= origin) & (features["horizon"] == 1)]
    z = np.log1p(train[["lag_1", "mean_4"]].to_numpy())
    z = np.where(np.isnan(z), np.nanmedian(z, axis=0), z)
    mean, std = z.mean(axis=0), z.std(axis=0)
    model = PoissonRegressor(alpha=1e-4, max_iter=300, solver="newton-cholesky")
    model.fit((z - mean) / std, train["y"])
    test = features.loc[(features["origin_week"] == origin) & (features["horizon"] == 1)]
    test = test.sort_values("area_code")
    x = np.log1p(test[["lag_1", "mean_4"]].to_numpy())
    x = np.where(
        np.isnan(x), np.nanmedian(np.log1p(train[["lag_1", "mean_4"]].to_numpy()), axis=0), x
    )
    expected = model.predict((x - mean) / std)
    assert np.allclose(get(one, "poisson_glm", origin, 1)["mu"], expected, rtol=1e-6)
