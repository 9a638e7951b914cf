import numpy as np
import pandas as pd

from training.backtest.folds import Fold
from training.backtest.stacked import stack_folds
from training.stacking import COMPONENTS, STACKED

WEEKS = pd.date_range("2024-01-01", periods=20, freq="7D")
CUTOFFS = [WEEKS[10], WEEKS[14], WEEKS[18]]
ENDS = [*CUTOFFS[1:], WEEKS[19]]
FOLDS = [Fold(k, c, e) for k, (c, e) in enumerate(zip(CUTOFFS, ENDS, strict=True))]


def _forecasts(poison_after: pd.Timestamp | None) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    frames = []
    for origin in WEEKS[:-1]:
        target = origin + pd.Timedelta(weeks=1)
        truth = rng.gamma(2.0, 1.5, 30)
        y = rng.poisson(truth).astype(float)
        for j, method in enumerate(COMPONENTS):
            mu = truth if j == 0 else rng.gamma(2.0, 1.5, 30)
            if poison_after is not None and target > poison_after:
                mu = np.full(30, 50.0) if j == 0 else truth  # the later weeks swap roles
            frames.append(pd.DataFrame({
                "method": method, "area_code": [f"A{i}" for i in range(30)],
                "origin_week": origin, "target_week": target, "horizon": 1,
                "mu": mu, "q_lo": 0.0, "q_hi": 1.0, "p_any": 0.5, "y": y, "y_ae": 0.0,
            }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def test_weights_at_a_fold_are_learned_only_from_weeks_up_to_its_cutoff():
    clean, poisoned = _forecasts(None), _forecasts(FOLDS[0].cutoff)
    scored = poisoned.loc[poisoned["origin_week"] >= FOLDS[0].cutoff]
    _, clean_weights = stack_folds(clean, clean.loc[clean["origin_week"] >= CUTOFFS[0]], FOLDS,
                                   (0.1, 0.9))  # fmt: skip
    stacked, weights = stack_folds(poisoned, scored, FOLDS, (0.1, 0.9))
    first = [w for w in weights if w["k"] == 0][0]
    assert first["weights"] == [w for w in clean_weights if w["k"] == 0][0]["weights"]
    assert first["weights"]["model"] > 0.9  # the poisoned later weeks would say otherwise
    assert first["learned_from"][1] <= str(FOLDS[0].cutoff.date())
    later = [w for w in weights if w["k"] == 2][0]
    assert later["weights"]["model"] < 0.5  # by then the swapped weeks are known
    fold0 = stacked.loc[stacked["origin_week"] < FOLDS[0].until]
    assert (fold0["target_week"] > FOLDS[0].cutoff).all()
    assert set(stacked["method"]) == {STACKED}
    assert len(stacked) == scored["method"].eq("model").sum()
