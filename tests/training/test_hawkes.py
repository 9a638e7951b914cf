import time

import numpy as np
import pytest

from training.baselines.hawkes import NEGATIVE_COUNTS, fit_grid_hawkes


def simulate(rng, mu, n_weeks, theta, omega, season=None):
    """Simulate the discretised grid Hawkes process week by week."""
    r = np.exp(-omega)
    counts = np.zeros((mu.size, n_weeks))
    history = np.zeros(mu.size)  # sum_d r^(d-1) X(t-d)
    for t in range(n_weeks):
        factor = 1.0 if season is None else season[t % season.size]
        lam = mu * factor + theta * (1 - r) * history
        counts[:, t] = rng.poisson(lam)
        history = counts[:, t] + r * history
    return counts


def mean_deviance(y, mu):
    mu = np.maximum(mu, 1e-9)
    term = np.where(y > 0, y * np.log(np.where(y > 0, y, 1) / mu), 0.0)
    return float(np.mean(2 * (term - y + mu)))


def test_em_recovers_theta_and_omega():
    rng = np.random.default_rng(3)
    mu = rng.gamma(2.0, 0.4, size=200)
    counts = simulate(rng, mu, 500, theta=0.5, omega=0.7)
    model = fit_grid_hawkes(counts, max_iter=2000, tol=1e-9)
    assert model.theta == pytest.approx(0.5, abs=0.07)
    assert model.omega == pytest.approx(0.7, abs=0.2)
    assert np.corrcoef(model.mu, mu)[0, 1] > 0.9


def test_no_excitation_gives_small_theta():
    rng = np.random.default_rng(4)
    mu = rng.gamma(2.0, 0.5, size=200)
    counts = rng.poisson(np.repeat(mu[:, None], 200, axis=1)).astype(float)
    model = fit_grid_hawkes(counts, max_iter=500)
    assert model.theta < 0.05


def test_beats_constant_rate_on_self_exciting_data():
    rng = np.random.default_rng(5)
    mu = rng.gamma(2.0, 0.3, size=300)
    counts = simulate(rng, mu, 260, theta=0.6, omega=0.5)
    train_weeks = 200
    model = fit_grid_hawkes(counts[:, :train_weeks])
    constant = counts[:, :train_weeks].mean(axis=1)
    hawkes_dev, const_dev = [], []
    for origin in range(train_weeks - 1, counts.shape[1] - 1):
        y = counts[:, origin + 1]
        hawkes_dev.append(mean_deviance(y, model.intensity(counts[:, : origin + 1], 1)))
        const_dev.append(mean_deviance(y, constant))
    assert np.mean(hawkes_dev) < 0.97 * np.mean(const_dev)


def test_intensity_propagates_expected_counts():
    rng = np.random.default_rng(6)
    counts = simulate(rng, rng.gamma(2.0, 0.5, size=30), 80, theta=0.4, omega=1.0)
    model = fit_grid_hawkes(counts, max_iter=100)
    lags = np.arange(1, counts.shape[1] + 3)
    g = np.exp(-model.omega * (lags - 1)) - np.exp(-model.omega * lags)
    filled = counts.copy()
    expected = []
    for _ in range(3):
        past = filled[:, ::-1]  # column 0 is one week before the target
        lam = model.mu + model.theta * past @ g[: past.shape[1]]
        expected.append(lam)
        filled = np.column_stack([filled, lam])
    for h in (1, 2, 3):
        assert np.allclose(model.intensity(counts, h), expected[h - 1])


def test_seasonal_background_is_recovered():
    rng = np.random.default_rng(7)
    season = 1.0 + 0.5 * np.sin(2 * np.pi * np.arange(52) / 52)
    counts = simulate(rng, rng.gamma(2.0, 1.0, size=150), 208, 0.3, 1.0, season=season)
    model = fit_grid_hawkes(counts, season_period=52)
    assert model.season is not None
    assert np.corrcoef(model.season, season)[0, 1] > 0.8
    assert model.season.mean() == pytest.approx(1.0)


def test_rejects_negative_counts():
    with pytest.raises(ValueError, match=NEGATIVE_COUNTS):
        fit_grid_hawkes(np.array([[1.0, -1.0, 0.0]]))


@pytest.mark.slow
def test_fit_speed_at_city_scale():
    rng = np.random.default_rng(8)
    counts = simulate(rng, rng.gamma(1.5, 1.0, size=1000), 156, theta=0.3, omega=0.8)
    start = time.perf_counter()
    fit_grid_hawkes(counts, max_iter=300, tol=1e-6)
    assert time.perf_counter() - start < 10.0
