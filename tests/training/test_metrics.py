import itertools
import math
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error, mean_poisson_deviance, mean_squared_error

from training.errors import SchemaError
from training.metrics.scores import (
    UNKNOWN_AREAS,
    best_baseline,
    calibration_by_decile,
    oracle_capture,
    paired_bootstrap,
    per_week_metrics,
    score_predictions,
)

WEEK0 = pd.Timestamp("2024-01-01")


def frame(mu, y, *, method="m", horizon=1, week=WEEK0, codes=None):
    mu, y = np.asarray(mu, float), np.asarray(y, float)
    codes = codes or [f"SYN{i:05d}" for i in range(len(mu))]
    return pd.DataFrame(
        {
            "method": method,
            "area_code": codes,
            "origin_week": week - pd.Timedelta(weeks=horizon),
            "target_week": week,
            "horizon": horizon,
            "mu": mu,
            "q_lo": np.floor(mu * 0.5),
            "q_hi": np.ceil(mu * 1.5),
            "p_any": 1 - np.exp(-mu),
            "y": y,
            "y_ae": 0.0,
        }
    )


def areas_for(km2):
    return pd.DataFrame({"area_code": [f"SYN{i:05d}" for i in range(len(km2))], "area_km2": km2})


def best_subset(y, k):
    """The most incidents any k areas hold, by enumerating every subset."""
    return max(sum(y[i] for i in subset) for subset in itertools.combinations(range(len(y)), k))


def test_hot_spot_metrics_on_a_hand_built_week():
    mu = [5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.2, 0.1]
    y = [1.0, 3.0, 0.0, 4.0, 2.0, 0.0, 5.0, 1.0]
    km2 = [0.5, 2.0, 1.0, 1.0, 0.5, 2.0, 1.0, 2.0]
    coverage = 0.25
    row = per_week_metrics(frame(mu, y), areas_for(km2), [coverage]).iloc[0]

    big_n, total_km2 = sum(y), sum(km2)
    # by count: k = ceil(0.25 * 8) = 2 areas, the two highest mu
    k = math.ceil(coverage * len(mu))
    n_count = y[0] + y[1]
    assert row["hit_rate_count_25"] == pytest.approx(n_count / big_n)
    assert row["pai_count_25"] == pytest.approx((n_count / big_n) / (k / len(mu)))
    assert row["pei_25"] == pytest.approx(n_count / best_subset(y, k))
    # by area, ranked by forecast density mu / km2 = 10, 2, 3, 2, 2, .25, .2, .05:
    # area 0 (10), area 2 (3), then the tie at 2 broken pessimistically by observed
    # density (area 1: 1.5 before areas 3 and 4: 4). Budget 2.5 km2: areas 0 and 2
    # hold 1.5 km2, so area 1 (2 km2) is taken whole and crosses the budget.
    n_area, a = y[0] + y[2] + y[1], km2[0] + km2[2] + km2[1]
    assert a > coverage * total_km2
    assert row["hit_rate_25"] == pytest.approx(n_area / big_n)
    assert row["pai_area_25"] == pytest.approx((n_area / big_n) / (a / total_km2))
    assert row["incidents"] == big_n


def test_area_crossing_the_budget_is_included_whole():
    mu, y, km2 = [3.0, 2.0, 1.0], [1.0, 2.0, 3.0], [1.0, 3.0, 1.0]
    row = per_week_metrics(frame(mu, y), areas_for(km2), [0.3]).iloc[0]
    # densities 3, 0.67, 1; budget 1.5 km2: area 0 (1 km2), then area 2 crosses
    # to 2 km2 and is included whole; area 1 is not reached
    assert row["hit_rate_30"] == pytest.approx(4 / 6)
    assert row["pai_area_30"] == pytest.approx((4 / 6) / (2 / 5))


def test_area_selection_ranks_by_density_not_count():
    # the big area has the most incidents but the lowest density
    mu, y, km2 = [6.0, 4.0, 1.0], [6.0, 4.0, 1.0], [8.0, 1.0, 1.0]
    row = per_week_metrics(frame(mu, y), areas_for(km2), [0.1]).iloc[0]
    # budget 1 km2: the densest area (area 1: 4 per km2) fills it
    assert row["hit_rate_10"] == pytest.approx(4 / 11)
    assert row["pai_area_10"] == pytest.approx((4 / 11) / (1 / 10))
    assert row["pei_area_10"] == pytest.approx(1.0)
    # by count the single most likely area (area 0) is chosen
    assert row["hit_rate_count_10"] == pytest.approx(6 / 11)


def test_ties_are_broken_pessimistically():
    y = [4.0, 0.0, 2.0, 1.0, 3.0]
    row = per_week_metrics(frame([1.0] * 5, y), areas_for([1.0] * 5), [0.4]).iloc[0]
    lowest_two = sorted(y)[:2]
    assert row["hit_rate_count_40"] == pytest.approx(sum(lowest_two) / sum(y))
    assert row["hit_rate_40"] == pytest.approx(sum(lowest_two) / sum(y))
    assert row["pei_40"] == pytest.approx(sum(lowest_two) / best_subset(y, 2))


def test_perfect_forecast_has_pei_one():
    rng = np.random.default_rng(1)
    weeks = []
    for w in range(10):
        y = rng.poisson(1.0, size=200).astype(float)
        weeks.append(frame(y, y, week=WEEK0 + pd.Timedelta(weeks=w)))
    per_week = per_week_metrics(pd.concat(weeks), areas_for([1.0] * 200), [0.05, 0.2])
    assert np.allclose(per_week["pei_5"], 1.0)
    assert np.allclose(per_week["pei_20"], 1.0)


def test_random_ranking_has_pai_near_one():
    rng = np.random.default_rng(2)
    n_areas, n_weeks = 3000, 20
    km2 = rng.uniform(0.2, 3.0, size=n_areas)
    rate = rng.gamma(1.0, 1.0, size=n_areas) * km2  # incidents grow with area
    weeks = [
        frame(rng.uniform(size=n_areas), rng.poisson(rate), week=WEEK0 + pd.Timedelta(weeks=w))
        for w in range(n_weeks)
    ]
    table = score_predictions(pd.concat(weeks), areas_for(km2), [0.1, 0.2])
    for column in ("pai_area_10", "pai_count_10", "pai_area_20", "pai_count_20"):
        assert table[column].iloc[0] == pytest.approx(1.0, abs=0.1), column


def test_pointwise_scores_equal_sklearn():
    rng = np.random.default_rng(3)
    y = rng.poisson(2.0, size=300).astype(float)
    mu = rng.gamma(2.0, 1.0, size=300)
    mu[:5] = 0.0  # floored before the deviance
    table = score_predictions(frame(mu, y), areas_for([1.0] * 300), [0.1], mu_floor=1e-6)
    row = table.iloc[0]
    floored = np.maximum(mu, 1e-6)
    assert row["n"] == 300
    assert row["poisson_deviance"] == pytest.approx(mean_poisson_deviance(y, floored))
    assert row["mae"] == pytest.approx(mean_absolute_error(y, floored))
    assert row["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, floored)))
    assert row["brier"] == pytest.approx(np.mean((1 - np.exp(-floored) - (y >= 1)) ** 2))
    inside = (y >= np.floor(mu * 0.5)) & (y <= np.ceil(mu * 1.5))
    assert row["interval_coverage"] == pytest.approx(inside.mean())


def test_weeks_without_incidents_are_excluded_and_counted():
    quiet = frame([1.0, 2.0], [0.0, 0.0], week=WEEK0)
    busy = frame([1.0, 2.0], [0.0, 3.0], week=WEEK0 + pd.Timedelta(weeks=1))
    unobserved = frame([1.0, 2.0], [np.nan, np.nan], week=WEEK0 + pd.Timedelta(weeks=2))
    table = score_predictions(pd.concat([quiet, busy, unobserved]), areas_for([1.0, 1.0]), [0.5])
    row = table.iloc[0]
    assert row["weeks"] == 2 and row["weeks_without_incidents"] == 1
    assert row["n"] == 4
    assert row["hit_rate_50"] == pytest.approx(1.0)  # only the busy week counts


def test_unknown_area_is_reported():
    message = UNKNOWN_AREAS.format(n=1, first="SYN00001")
    with pytest.raises(SchemaError, match=re.escape(message)):
        score_predictions(frame([1.0, 2.0], [1.0, 0.0]), areas_for([1.0]), [0.5])


def weekly(values_a, values_b, metric="score"):
    weeks = WEEK0 + pd.to_timedelta(np.arange(len(values_a)) * 7, unit="D")
    return pd.concat(
        [
            pd.DataFrame({"method": m, "horizon": 1, "target_week": weeks, metric: v})
            for m, v in (("a", values_a), ("b", values_b))
        ]
    )


def test_bootstrap_interval_covers_the_true_difference():
    rng = np.random.default_rng(4)
    true_difference, hits = 0.3, 0
    for _ in range(200):
        base = rng.normal(0, 1, size=60)  # shared week effects: the pairing matters
        a = base + true_difference + rng.normal(0, 0.5, size=60)
        b = base + rng.normal(0, 0.5, size=60)
        result = paired_bootstrap(weekly(a, b), "score", "a", "b", n_boot=400, seed=1)
        hits += result["ci_low"] <= true_difference <= result["ci_high"]
    assert 0.88 <= hits / 200 <= 0.99


def test_bootstrap_flags_a_clearly_better_method():
    rng = np.random.default_rng(5)
    base = rng.normal(0, 1, size=40)
    per_week = weekly(base + 1.0 + rng.normal(0, 0.2, 40), base, metric="pai")
    result = paired_bootstrap(per_week, "pai", "a", "b", n_boot=1000, seed=2)
    assert result["ci_low"] > 0 and result["a_better"] and result["p_value"] < 0.01
    worse = paired_bootstrap(per_week, "pai", "a", "b", seed=2, greater_is_better=False)
    assert not worse["a_better"]


def test_pooled_horizons_resample_target_weeks_not_rows():
    rng = np.random.default_rng(7)
    a, b = rng.normal(0.2, 1, size=30), rng.normal(0, 1, size=30)
    one = weekly(a, b)
    # four horizons of the same target weeks, perfectly correlated: no new information
    pooled = pd.concat([one.assign(horizon=h) for h in (1, 2, 3, 4)])
    single = paired_bootstrap(one, "score", "a", "b", n_boot=2000, seed=3)
    both = paired_bootstrap(pooled, "score", "a", "b", n_boot=2000, seed=3)
    assert both["n_weeks"] == single["n_weeks"] == 30
    assert both["estimate"] == pytest.approx(single["estimate"])
    width = single["ci_high"] - single["ci_low"]
    assert both["ci_high"] - both["ci_low"] == pytest.approx(width, rel=0.1)


def test_best_baseline_and_oracle_capture():
    table = pd.DataFrame(
        {
            "method": ["last_week", "prior_52", "model", "oracle"] * 2,
            "horizon": [1] * 4 + [2] * 4,
            "pai_area_5": [2.0, 3.0, 3.5, 4.0, 2.2, 2.8, 3.3, 3.8],
        }
    )
    best = best_baseline(table, "pai_area_5", ["last_week", "prior_52"], True)
    assert best == "prior_52"
    assert best_baseline(table, "pai_area_5", ["last_week", "prior_52"], False) == "last_week"
    capture = oracle_capture(table, "pai_area_5", "model", best, "oracle")
    assert capture == pytest.approx((3.4 - 2.9) / (3.9 - 2.9))
    assert oracle_capture(table, "pai_area_5", "model", best, "oracle", horizon=1) == 0.5


def test_calibration_by_decile():
    rng = np.random.default_rng(6)
    mu = rng.gamma(2.0, 1.0, size=1000)
    y = rng.poisson(mu).astype(float)
    calibration = calibration_by_decile(frame(mu, y, codes=[str(i) for i in range(1000)]))
    assert list(calibration["decile"]) == list(range(1, 11))
    assert (calibration["n"] == 100).all()
    order = np.argsort(mu, kind="stable")
    top = order[-100:]
    assert calibration["mean_mu"].iloc[-1] == pytest.approx(mu[top].mean())
    assert calibration["mean_y"].iloc[-1] == pytest.approx(y[top].mean())
    assert calibration["mean_mu"].is_monotonic_increasing
