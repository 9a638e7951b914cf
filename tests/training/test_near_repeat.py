"""Near-repeat features at day resolution, from hand-made linked records."""

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from tests.training.test_features import make_panel
from training.config import FeatureParams
from training.errors import SchemaError
from training.features import KEY_COLUMNS, build_features
from training.near_repeat import (
    MSG_MISSING_RECORD_COLUMN,
    daily_events,
    near_repeat_block,
    neighbour_min,
    read_daily_events,
)

WEEKS = pd.date_range("2024-01-01", periods=6, freq="7D")  # Mondays
CODES = pd.Index(["A", "B"])


def _records(rows):
    frame = pd.DataFrame(rows, columns=["source", "area_code", "date", "grain", "is_violence"])
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def _coverage(missing=()):
    covered = [str(w.date()) for w in WEEKS if str(w.date()) not in missing]
    return {s: {"unit": "week", "covered": covered} for s in ("istv", "police")}


RECORDS = _records([
    ("istv", "A", "2024-01-07", "day", True),  # Sunday of week 0
    ("istv", "A", "2024-01-10", "day", True),  # Wednesday of week 1
    ("istv", "B", "2024-01-20", "day", True),  # Saturday of week 2
    ("police", "A", "2024-01-11", "day", False),  # not violent
    ("police", "A", "2024-01-01", "month", True),  # month grain: no day
])  # fmt: skip


def _block(records, params=None, coverage=None):
    events = daily_events(records, _coverage() if coverage is None else coverage)
    return near_repeat_block(events, WEEKS, CODES, np.arange(6), params or FeatureParams())


def test_day_counts_and_days_since_on_hand_made_records():
    block = _block(RECORDS)
    # origin week 1 ends Sunday 14 Jan: A had 10 Jan (7 days) and 7 Jan (14 days)
    assert block["nr_violent_7d"][1].tolist() == [1, 0]
    assert block["nr_violent_14d"][1].tolist() == [2, 0]
    assert block["nr_days_since"][1, 0] == 4
    assert block["nr_violent_7d"][0].tolist() == [1, 0]  # the Sunday itself counts
    assert block["nr_days_since"][0, 0] == 0
    assert block["nr_days_since"][2].tolist() == [11, 1]
    # B had nothing since the records began (15 days back): not known, unless capped
    assert np.isnan(block["nr_days_since"][1, 1])
    capped = _block(RECORDS, FeatureParams(near_repeat_cap_days=10))
    assert capped["nr_days_since"][1, 1] == 10 and capped["nr_days_since"][2, 0] == 10


def test_month_grain_and_non_violent_records_are_left_out():
    events = daily_events(RECORDS, _coverage())
    assert events.counts["n"].sum() == 3
    assert pd.Timestamp("2024-01-01") not in set(events.counts["date"])
    assert pd.Timestamp("2024-01-11") not in set(events.counts["date"])


def test_a_week_outside_coverage_is_missing_not_zero():
    block = _block(RECORDS, coverage=_coverage(missing=("2024-01-22",)))  # week 3
    assert np.isnan(block["nr_violent_7d"][3]).all()
    assert np.isnan(block["nr_violent_14d"][4]).all()  # its window reaches week 3
    assert block["nr_violent_7d"][4].tolist() == [0, 0]
    # A's last record is before the gap: days since is not known
    assert np.isnan(block["nr_days_since"][4, 0])
    assert block["nr_days_since"][2, 0] == 11


def test_records_after_the_origin_change_no_feature_of_that_origin():
    panel, areas, adjacency = make_panel()
    days = pd.date_range("2023-01-02", periods=30 * 7, freq="D")
    rng = np.random.default_rng(3)
    n = 600
    records = _records({
        "source": "istv", "area_code": rng.choice(areas["area_code"], n),
        "date": rng.choice(days, n), "grain": "day", "is_violence": True,
    })  # fmt: skip
    params = FeatureParams(min_history_weeks=4)
    origin = pd.Timestamp("2023-04-03")  # a Monday; its Sunday is 9 April
    later = records.loc[records["date"] > origin + pd.Timedelta(days=6)]
    busier = pd.concat([records, later, later.assign(area_code=areas["area_code"].iloc[0])])
    before = build_features(panel, areas, adjacency, params, daily_events(records))
    after = build_features(panel, areas, adjacency, params, daily_events(busier))
    columns = [c for c in before.columns if c not in KEY_COLUMNS]
    upto = before["origin_week"] <= origin
    pd.testing.assert_frame_equal(before.loc[upto, columns], after.loc[upto, columns])
    assert not before.loc[~upto, "nr_violent_7d"].equals(after.loc[~upto, "nr_violent_7d"])
    assert {"nr_violent_7d", "nr_violent_14d", "nr_days_since", "nb_nr_days_since"} <= set(columns)
    # without linked records the group is absent, not zero
    plain = build_features(panel, areas, adjacency, params)
    assert not [c for c in plain.columns if "nr_" in c]


def test_neighbour_min_leaves_out_missing_neighbours():
    spread = sparse.csr_matrix(np.array([[0, 0.5, 0.5], [1, 0, 0], [0, 0, 0]]))
    values = np.array([[3.0, 5.0, np.nan], [np.nan, 2.0, 1.0]])
    out = neighbour_min(values, spread)
    assert out[0].tolist()[:2] == [5.0, 3.0] and np.isnan(out[0, 2])
    assert out[1, 0] == 1.0 and np.isnan(out[1, 1]) and np.isnan(out[1, 2])


def test_reading_linked_records_names_the_file_and_the_missing_field(tmp_path):
    assert read_daily_events(tmp_path) is None  # no linked records: the group is left out
    RECORDS.drop(columns="grain").to_parquet(tmp_path / "records.parquet")
    with pytest.raises(SchemaError) as err:
        read_daily_events(tmp_path)
    assert err.value.field == "grain" and "records.parquet" in str(err.value)
    assert MSG_MISSING_RECORD_COLUMN.split(";")[0] in str(err.value)
    RECORDS.to_parquet(tmp_path / "records.parquet")
    assert read_daily_events(tmp_path).counts["n"].sum() == 3
