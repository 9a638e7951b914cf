"""The predictions frame's columns are defined once and every reader names its own from them."""

from __future__ import annotations

import re

import pytest

from governance import fairness, gate_inputs
from training.metrics import scores as metrics
from training.predictions import NOT_A_COLUMN, PREDICTION_COLUMNS, prediction_columns


def test_prediction_columns_keep_the_frame_order_and_refuse_unknown_names():
    assert prediction_columns("y", "mu", "method") == ("method", "mu", "y")
    message = NOT_A_COLUMN.format(name="score", columns=", ".join(PREDICTION_COLUMNS))
    with pytest.raises(KeyError, match=re.escape(message)):
        prediction_columns("mu", "score")


def test_every_reader_reads_columns_of_the_one_definition():
    for columns in (
        gate_inputs.PREDICTION_COLUMNS,
        fairness.PREDICTION_COLUMNS,
        metrics._PREDICTION_COLUMNS,
    ):
        assert set(columns) <= set(PREDICTION_COLUMNS)
        assert list(columns) == [c for c in PREDICTION_COLUMNS if c in columns]
