"""Differential police recording fails the gate, in either direction (tiny synthetic cities)."""

import pytest

from governance.recording import STANDARDISED_AWAY, recording_audit
from tests.governance import gate_fixtures as gf
from training.config import SynthParams, load_params
from training.link.linker import link_sources
from training.panel import build_panel
from training.synth.city import generate_city

SEED = 2
GROUP = "majority global majority"


def _city(tmp_path_factory, bias: float):
    root = tmp_path_factory.mktemp(f"city_{bias:+.1f}")
    params = load_params(root=root)
    generate_city(
        SynthParams(preset="tiny", seed=SEED, recording_bias=bias), params.paths.resolve("raw")
    )
    linked = link_sources(params.paths.resolve("raw"), params.sources, params.link)
    return build_panel(linked.records, linked.areas), linked.areas


@pytest.fixture(scope="module", params=[0.0, 0.4, -0.4], ids=["none", "raised", "lowered"])
def audit(request, tmp_path_factory):
    panel, areas = _city(tmp_path_factory, request.param)
    policy = gf.policy()
    result = recording_audit(panel, areas, policy.fairness, policy.recording, references={})
    return request.param, result


def _failed(result):
    return [c for c in result.checks if c.gated and not c.passed]


def test_recording_bias_fails_in_either_direction_and_none_passes(audit):
    bias, result = audit
    failed = _failed(result)
    if bias == 0:
        assert failed == [], [c.detail for c in failed]
        return
    names = [c.name for c in failed]
    assert f"fairness.recording_ratio.ethnic_band.{GROUP}" in names
    check = next(c for c in failed if c.name.endswith(GROUP))
    word = "over-recorded" if bias > 0 else "under-recorded"
    assert word in check.detail
    # The interval excludes 1 on the side of the bias.
    assert (check.ci_low > 1) if bias > 0 else (check.ci_high < 1)


def test_deprivation_groupings_are_reported_as_standardised_away(audit):
    _, result = audit
    assert result.skipped == {"imd_quintile": STANDARDISED_AWAY}
    assert set(result.table["grouping"]) == {"ethnic_band", "district"}
    assert {"ratio", "ci_low", "ci_high", "direction", "gated", "passed"} <= set(result.table)


def _row(name, value, low, high, detail):
    from governance.cards.schema import CheckRow

    return CheckRow(name=name, category="fairness", passed=True, gated=False, value=value,
                    lower=0.8, upper=1.25, ci_low=low, ci_high=high, detail=detail)  # fmt: skip


def test_card_says_which_groups_rest_on_under_or_over_recorded_data():
    from governance.cards.narrative import NO_RECORDING_GAP, recording_statement

    over = _row("fairness.recording_ratio.ethnic_band.B", 1.36, 1.13, 1.51,
                "police records per A&E attendance, B vs A (20 vs 40 areas)")  # fmt: skip
    under = _row("fairness.recording_ratio.district.North", 0.67, 0.58, 0.83,
                 "police records per A&E attendance, North vs South (10 vs 12 areas)")  # fmt: skip
    level = _row("fairness.recording_ratio.district.East", 1.04, 0.95, 1.13, "East vs South")
    text = recording_statement([over, under, level])
    assert "B (ethnic_band) rests on over-recorded data" in text
    assert "1.36 times the violence per A&E attendance that they record in A" in text
    assert "North (district) rests on under-recorded data" in text
    assert "East" not in text
    assert recording_statement([level]) == NO_RECORDING_GAP
