"""Risk-adjusted false-alarm parity and the A&E calibration on a city with unequal base rates."""

import numpy as np
import pandas as pd
import pytest

from governance._fairness_checks import FEW_AE, FEW_FALSE_ALARMS
from governance.fairness import PARITY_NOT_GATED, area_groups, fairness_audit, flag_hotspots
from governance.policy import Grouping
from tests.governance import fairness_city as fc
from tests.governance import gate_fixtures as gf
from training.errors import ConfigError

ADJUSTED = ("fpr_top_k_adjusted", "fdr_top_k_adjusted")


@pytest.fixture(scope="module")
def city():
    return fc.graded_areas()


@pytest.fixture(scope="module")
def calibrated_rows(city):
    return fc.calibrated_predictions(city)


@pytest.fixture(scope="module")
def calibrated(city, calibrated_rows):
    return fairness_audit(calibrated_rows, city, gf.policy().fairness)


def _failed(audit):
    return {c.name for c in audit.checks if c.gated and not c.passed}


def _check(audit, name):
    return next(c for c in audit.checks if c.name == f"fairness.{name}")


def test_calibrated_model_on_unequal_base_rates_passes_adjusted_gates(calibrated):
    assert _failed(calibrated) == set()
    # the raw Aequitas FPR of the most deprived quintile is several times Q3's ...
    raw = _check(calibrated, "fpr_top_k.imd_quintile.Q1")
    assert not raw.gated and raw.value > 3
    # ... because its base rate is higher, not because its forecasts are inflated
    for metric in ADJUSTED:
        check = _check(calibrated, f"{metric}.imd_quintile.Q1")
        assert check.gated and 0.8 < check.value < 1.25
    groups = calibrated.groups.set_index(["grouping", "group"])
    q1 = groups.loc[("imd_quintile", "Q1")]
    assert q1["false_alarms"] == pytest.approx(q1["expected_false_alarms"], rel=0.15)


def test_selection_vs_harm_is_read_against_parity_and_reported(city, calibrated_rows, calibrated):
    rows = calibrated.ratios[calibrated.ratios["metric"] == "selection_vs_harm"]
    rows = rows[rows["grouping"] == "imd_quintile"].set_index("group")
    assert set(rows.index) == {"Q1", "Q2", "Q3", "Q4", "Q5"}
    assert (rows["reference"] == "parity").all() and not rows["gated"].any()
    flagged = flag_hotspots(calibrated_rows, coverage=gf.policy().fairness.hotspot_coverage)
    quintile = flagged["area_code"].map(
        area_groups(city, ["imd_quintile"]).set_index("area_code")["imd_quintile"]
    )
    q1 = quintile == "Q1"
    expected = (flagged.loc[q1, "flag"].sum() / flagged["flag"].sum()) / (
        flagged.loc[q1, "y"].sum() / flagged["y"].sum()
    )
    assert rows.loc["Q1", "ratio"] == pytest.approx(expected)
    # a top-k cut concentrates flags on the riskiest group even under a perfect ranking
    assert rows.loc["Q1", "ratio"] > 1.2 and rows.loc["Q5", "ratio"] == 0


def test_inflated_band_fails_adjusted_false_alarm_parity_and_calibration(city):
    predictions = fc.calibrated_predictions(city, inflate={"B": 1.6})
    audit = fairness_audit(predictions, city, gf.policy().fairness)
    failed = _failed(audit)
    for metric in ("calibration_ratio", *ADJUSTED):
        assert f"fairness.{metric}.ethnic_band.B" in failed
    assert _check(audit, "fdr_top_k_adjusted.ethnic_band.B").ci_low > 1.25
    # band B is spread evenly over deprivation: no IMD quintile fails
    assert not any(".imd_quintile." in name for name in failed)


def test_police_recording_bias_fails_only_the_ae_calibration(city):
    # labels over-record band B; A&E does not; the model fits the biased labels
    predictions = fc.fitted_predictions(city, police_bias={"B": 1.8})
    audit = fairness_audit(predictions, city, gf.policy().fairness)
    assert _failed(audit) == {"fairness.calibration_ratio_ae.ethnic_band.B"}
    assert _check(audit, "calibration_ratio_ae.ethnic_band.B").ci_low > 1.25
    assert 0.9 < _check(audit, "calibration_ratio.ethnic_band.B").value < 1.1
    # without enough A&E attendances the same disparity is reported, not gated
    few = fairness_audit(predictions, city, gf.policy(n_boot=0, min_ae_count=10**6).fairness)
    check = _check(few, "calibration_ratio_ae.ethnic_band.B")
    assert not check.gated and not check.passed
    assert FEW_AE.format(n=10**6) in check.detail
    assert "fairness.calibration_ratio_ae.ethnic_band.B" not in _failed(few)


def test_reference_never_flagged_is_replaced_by_the_city(city):
    policy = gf.policy(n_boot=0).fairness
    predictions = fc.calibrated_predictions(city, weeks=20)
    # forecasts halved in Q3 push it out of the hotspots: no evidence to compare with
    q3 = predictions["area_code"].isin(city["area_code"][city["imd_decile"].isin([5, 6])])
    predictions.loc[q3, ["mu", "p_any"]] = predictions.loc[q3, ["mu", "p_any"]] * 0.3
    audit = fairness_audit(predictions, city, policy)
    rows = audit.ratios[
        (audit.ratios["grouping"] == "imd_quintile") & audit.ratios["metric"].isin(ADJUSTED)
    ].set_index(["metric", "group"])
    assert (rows["reference"] == "city").all()
    assert rows.loc[("fdr_top_k_adjusted", "Q3"), "reported_because"] == FEW_FALSE_ALARMS.format(
        n=policy.min_expected_false_alarms
    )
    assert bool(rows.loc[("fdr_top_k_adjusted", "Q1"), "gated"])
    groups = audit.groups.set_index(["grouping", "group"])
    excess = groups["false_alarms"] / groups["expected_false_alarms"]
    city_excess = (
        groups.loc["imd_quintile", "false_alarms"].sum()
        / groups.loc["imd_quintile", "expected_false_alarms"].sum()
    )
    assert rows.loc[("fdr_top_k_adjusted", "Q1"), "ratio"] == pytest.approx(
        excess.loc[("imd_quintile", "Q1")] / city_excess
    )


def test_excess_follows_its_definition():
    # one group, two weeks of two areas; the top area of each week is flagged
    rows = pd.DataFrame(
        {
            "area_code": ["SYN00001", "SYN00002"] * 2,
            "target_week": pd.to_datetime(["2024-01-08"] * 2 + ["2024-01-15"] * 2),
            "horizon": 1,
            "mu": [2.0, 0.5, 1.0, 3.0],
            "p_any": [0.8, 0.3, 0.6, 0.9],
            "y": [0.0, 0.0, 2.0, 0.0],
            "y_ae": [0.0, 0.0, 1.0, 0.0],
        }
    )
    areas = pd.DataFrame({"area_code": ["SYN00001", "SYN00002"], "district": ["N", "N"]})
    policy = gf.policy(n_boot=0, groupings={"district": Grouping()}).fairness
    group = fairness_audit(rows, areas, policy.model_copy(update={"hotspot_coverage": 0.5}))
    group = group.groups.iloc[0]
    # flagged: (w1, area 1: y=0, p0=0.2) and (w2, area 2: y=0, p0=0.1)
    assert group["false_alarms"] == 2 and group["expected_false_alarms"] == pytest.approx(0.3)
    observed_fpr, expected_fpr = 2 / 3, 0.3 / (0.2 + 0.7 + 0.4 + 0.1)
    assert group["fpr_top_k"] == pytest.approx(observed_fpr)
    assert group["fpr_top_k_adjusted"] == pytest.approx(observed_fpr / expected_fpr)
    assert group["fdr_top_k_adjusted"] == pytest.approx((2 / 2) / (0.3 / 2))
    # without p_any, p0 is the Poisson exp(-mu)
    poisson = fairness_audit(
        rows.drop(columns="p_any"), areas, policy.model_copy(update={"hotspot_coverage": 0.5})
    ).groups.iloc[0]
    assert poisson["expected_false_alarms"] == pytest.approx(np.exp(-2.0) + np.exp(-3.0))


def test_selection_vs_harm_cannot_be_gated(city):
    base = gf.policy(n_boot=0).fairness
    policy = base.model_copy(update={"gated": [*base.gated, "selection_vs_harm"]})
    with pytest.raises(ConfigError) as err:
        fairness_audit(fc.calibrated_predictions(city, weeks=2), city, policy)
    assert str(err.value) == PARITY_NOT_GATED.format(name="selection_vs_harm")
