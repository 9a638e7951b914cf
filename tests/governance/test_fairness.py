import numpy as np
import pandas as pd
import pytest

from governance.fairness import (
    MISSING_COLUMN,
    PREDICTION_COLUMNS,
    UNKNOWN_REFERENCE,
    area_groups,
    fairness_audit,
    flag_hotspots,
)
from governance.policy import Grouping
from tests.governance import gate_fixtures as gf
from training.errors import ConfigError, SchemaError


@pytest.fixture(scope="module")
def area_table():
    return gf.areas()


def _gated_failures(audit):
    return {c.name for c in audit.checks if c.gated and not c.passed}


def test_fair_forecast_passes_every_gated_check(area_table):
    audit = fairness_audit(gf.oracle_predictions(area_table), area_table, gf.policy().fairness)
    assert _gated_failures(audit) == set()
    gated = [c for c in audit.checks if c.gated]
    assert {c.name.split(".")[1] for c in gated} == {
        "calibration_ratio",
        "calibration_ratio_ae",
        "fpr_top_k_adjusted",
        "fdr_top_k_adjusted",
    }
    calib = next(c for c in gated if c.name == "fairness.calibration_ratio.ethnic_band.B")
    assert calib.ci_low < calib.value < calib.ci_high
    assert 0.9 < calib.value < 1.1


def test_forecast_inflated_for_one_band_fails_calibration(area_table):
    predictions = gf.oracle_predictions(area_table, inflate={"B": 1.6})
    audit = fairness_audit(predictions, area_table, gf.policy().fairness)
    failed = _gated_failures(audit)
    assert "fairness.calibration_ratio.ethnic_band.B" in failed
    assert "fairness.calibration_ratio_ae.ethnic_band.B" in failed
    # band A loses every flag: its raw rates are 0, reported as an infinite disparity
    raw = next(c for c in audit.checks if c.name == "fairness.fpr_top_k.ethnic_band.B")
    assert not raw.gated and not raw.passed
    calib = next(c for c in audit.checks if c.name == "fairness.calibration_ratio.ethnic_band.B")
    assert calib.value == pytest.approx(1.6, rel=0.03)
    # the inflation follows ethnic band, not deprivation: IMD quintiles stay within the band
    assert not any(name.startswith("fairness.calibration_ratio.imd") for name in failed)


def test_reference_groups_follow_policy(area_table):
    audit = fairness_audit(
        gf.oracle_predictions(area_table, weeks=20), area_table, gf.policy(n_boot=0).fairness
    )
    assert audit.references["imd_quintile"] == "Q3"
    # ethnic bands and districts are the same size: "largest" breaks the tie by name
    assert audit.references["ethnic_band"] == "A"
    assert audit.references["district"] == "North"


def test_small_groups_are_reported_not_gated(area_table):
    audit = fairness_audit(
        gf.oracle_predictions(area_table, weeks=20, inflate={"B": 2.0}),
        area_table,
        gf.policy(n_boot=0, min_group_areas=150).fairness,
    )
    band_b = [c for c in audit.checks if c.name.endswith("ethnic_band.B")]
    assert band_b and all(not c.gated for c in band_b)
    assert "fewer than 150 areas" in band_b[0].detail
    assert not next(c for c in band_b if "calibration_ratio." in c.name).passed


def test_recording_gap_exposes_ae_under_recording(area_table):
    predictions = gf.oracle_predictions(area_table, weeks=60)
    band_b = predictions["area_code"].isin(
        area_table.loc[area_table["audit_ethnic_band"] == "B", "area_code"]
    )
    # A&E sees fewer of band B's assaults: the A&E-only calibration of B rises above 1
    thinned = np.random.default_rng(0).binomial(predictions.loc[band_b, "y_ae"].astype(int), 0.5)
    predictions.loc[band_b, "y_ae"] = thinned.astype(float)
    audit = fairness_audit(predictions, area_table, gf.policy(n_boot=0).fairness)
    groups = audit.groups.set_index(["grouping", "group"])
    gap_a = groups.loc[("ethnic_band", "A"), "recording_gap"]
    gap_b = groups.loc[("ethnic_band", "B"), "recording_gap"]
    assert gap_b < 0 < gap_a
    assert gap_a - gap_b > 0.5
    # the police-inclusive calibration is untouched: the model is not what changed
    assert abs(groups.loc[("ethnic_band", "B"), "calibration_ratio"] - 1) < 0.1


def test_flag_hotspots_marks_top_share_per_forecast():
    rows = pd.DataFrame(
        {
            "area_code": [f"SYN{i:05d}" for i in range(20)] * 2,
            "target_week": pd.to_datetime(["2024-01-08"] * 20 + ["2024-01-15"] * 20),
            "horizon": 1,
            "mu": list(range(20)) + list(range(20))[::-1],
        }
    )
    flagged = flag_hotspots(rows, coverage=0.1)
    assert flagged["flag"].sum() == 4
    assert set(flagged.loc[flagged["flag"], "mu"]) == {19, 18}
    assert rows.columns.tolist() == ["area_code", "target_week", "horizon", "mu"]


def test_imd_quintile_derived_from_decile():
    table = pd.DataFrame({"area_code": ["a", "b", "c"], "imd_decile": [1, 6, 10]})
    assert area_groups(table, ["imd_quintile"])["imd_quintile"].tolist() == ["Q1", "Q3", "Q5"]


def test_missing_column_and_unknown_reference_are_clear(area_table):
    predictions = gf.oracle_predictions(area_table, weeks=4)
    with pytest.raises(SchemaError) as err:
        fairness_audit(predictions.drop(columns="y_ae"), area_table, gf.policy().fairness)
    assert err.value.field == "y_ae"
    assert MISSING_COLUMN.format(expected=PREDICTION_COLUMNS) in str(err.value)
    base = gf.policy().fairness
    bad = base.model_copy(update={"groupings": {"district": Grouping(reference="Nowhere")}})
    with pytest.raises(ConfigError) as err:
        fairness_audit(predictions, area_table, bad)
    assert str(err.value) == UNKNOWN_REFERENCE.format(
        reference="Nowhere", grouping="district", groups=["North", "South"]
    )


def test_bootstrap_intervals_are_fairlearns_exactly():
    # The intervals are computed without a MetricFrame per resample, on the
    # very resamples MetricFrame(n_boot, random_state) draws.
    import numpy as np
    import pandas as pd
    from fairlearn.metrics import MetricFrame

    from governance._fairness_frames import bootstrap_interval

    values = np.random.default_rng(4).gamma(2.0, size=150)

    def share_of_top(y_true, y_pred):
        chosen = values[np.asarray(y_true)]
        return float(np.sort(chosen)[-15:].sum() / chosen.sum())

    def mean(y_true, y_pred):
        return float(values[np.asarray(y_true)].mean())

    functions = {"share_of_top": share_of_top, "mean": mean}
    index = np.arange(len(values))
    frame = MetricFrame(metrics=functions, y_true=index, y_pred=index,
                        sensitive_features=pd.Series(np.full(len(values), "all"), name="all"),
                        n_boot=30, ci_quantiles=[0.025, 0.975], random_state=7)  # fmt: skip
    low, high = bootstrap_interval(
        functions, len(values), n_boot=30, seed=7, quantiles=(0.025, 0.975)
    )
    pd.testing.assert_series_equal(low, frame.overall_ci[0], check_names=False)
    pd.testing.assert_series_equal(high, frame.overall_ci[1], check_names=False)
