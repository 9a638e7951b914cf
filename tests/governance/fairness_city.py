"""A city where deprivation drives violence, for the fairness tests.

Unlike ``gate_fixtures.areas`` (every group holds the same mix of risks), base
rates here differ by IMD quintile: an accurate forecast flags the quiet weeks
of deprived areas more often, so raw false-positive rates differ by group even
when the forecast is calibrated. Ethnic band is assigned independently of risk.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

START = pd.Timestamp("2023-01-02")
# Relative risk by IMD quintile (Q1 most deprived).
DEPRIVATION = {1: 2.6, 2: 1.7, 3: 1.0, 4: 0.7, 5: 0.5}
P_AE = 0.3
P_POLICE = 0.5


def graded_areas(*, per_quintile: int = 80, seed: int = 5) -> pd.DataFrame:
    """Areas with a lognormal risk (mean weekly harm) scaled by deprivation."""
    rng = np.random.default_rng(seed)
    quintile = np.repeat(np.arange(1, 6), per_quintile)
    n = len(quintile)
    risk = 0.6 * np.vectorize(DEPRIVATION.get)(quintile) * np.exp(rng.normal(-0.2, 0.6, n))
    return pd.DataFrame(
        {
            "area_code": [f"SYN{i:05d}" for i in range(n)],
            "district": np.where(np.arange(n) % 2 == 0, "North", "South"),
            "imd_decile": 2 * quintile - rng.integers(0, 2, n),
            "population": rng.integers(1200, 2000, n).astype(float),
            "audit_ethnic_band": np.where(rng.permutation(n) % 2 == 0, "A", "B"),
            "harm": risk,
        }
    )


def weekly_counts(
    area_table: pd.DataFrame, *, weeks: int, seed: int, police_bias: dict[str, float] | None = None
) -> pd.DataFrame:
    """Area x week harm, A&E and police counts; ``y`` = police + A&E records.

    Each assault reaches A&E with probability ``P_AE`` and is recorded by the
    police with probability ``P_POLICE``, times ``police_bias`` for a band.
    """
    rng = np.random.default_rng(seed)
    harm = area_table["harm"].to_numpy()
    bias = area_table["audit_ethnic_band"].map(police_bias or {}).fillna(1.0).to_numpy()
    frames = []
    for w in range(weeks):
        assaults = rng.poisson(harm)
        ae = rng.binomial(assaults, P_AE)
        police = rng.binomial(assaults, np.minimum(P_POLICE * bias, 1.0))
        frames.append(
            pd.DataFrame(
                {
                    "area_code": area_table["area_code"],
                    "target_week": START + pd.Timedelta(weeks=w + 1),
                    "y": (police + ae).astype(float),
                    "y_ae": ae.astype(float),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def calibrated_predictions(
    area_table: pd.DataFrame,
    *,
    weeks: int = 60,
    seed: int = 0,
    inflate: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Backtest rows forecast from each area's true harm (x ``inflate`` by band).

    ``mu`` is the expected count and ``p_any`` the true P(y >= 1): an assault
    recorded by both police and A&E counts twice, so y is not Poisson.
    """
    rows = weekly_counts(area_table, weeks=weeks, seed=seed)
    factor = area_table["audit_ethnic_band"].map(inflate or {}).fillna(1.0)
    harm = pd.Series((area_table["harm"] * factor).to_numpy(), index=area_table["area_code"])
    harm = rows["area_code"].map(harm).to_numpy()
    p_none = (1 - P_POLICE) * (1 - P_AE)
    return _backtest_rows(rows, harm * (P_POLICE + P_AE), p_any=-np.expm1(-harm * (1 - p_none)))


def fitted_predictions(
    area_table: pd.DataFrame,
    *,
    train_weeks: int = 60,
    weeks: int = 60,
    police_bias: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Backtest rows whose mu is each area's mean ``y`` over earlier training weeks.

    With ``police_bias`` the labels (train and test alike) are recorded with
    that bias; A&E counts are not: the model fits the biased labels well.
    """
    train = weekly_counts(area_table, weeks=train_weeks, seed=11, police_bias=police_bias)
    fitted = train.groupby("area_code")["y"].mean().clip(lower=0.05)
    rows = weekly_counts(area_table, weeks=weeks, seed=12, police_bias=police_bias)
    mu = rows["area_code"].map(fitted).to_numpy()
    return _backtest_rows(rows, mu, p_any=-np.expm1(-mu))


def _backtest_rows(rows: pd.DataFrame, mu: np.ndarray, *, p_any: np.ndarray) -> pd.DataFrame:
    return rows.assign(
        method="model",
        origin_week=rows["target_week"] - pd.Timedelta(weeks=1),
        horizon=1,
        mu=mu,
        p_any=p_any,
    )
