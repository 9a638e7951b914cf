"""The ``predictions`` frame's columns, defined once for every step that writes or reads it.

One row per (method, area, origin week, horizon): the keys, the forecast
(``mu``, the interval ``q_lo``/``q_hi``, ``p_any = P(y >= 1)``) and the
outcomes (``y``, police-recorded; ``y_ae``, A&E-recorded), NaN beyond the
panel. The backtest and the baselines write all of ``PREDICTION_COLUMNS``;
scorers and audits name the columns they read with :func:`prediction_columns`.
"""

from __future__ import annotations

__all__ = [
    "KEY_COLUMNS",
    "FORECAST_COLUMNS",
    "OUTCOME_COLUMNS",
    "PREDICTION_COLUMNS",
    "prediction_columns",
]

KEY_COLUMNS = ("method", "area_code", "origin_week", "target_week", "horizon")
FORECAST_COLUMNS = ("mu", "q_lo", "q_hi", "p_any")
OUTCOME_COLUMNS = ("y", "y_ae")
PREDICTION_COLUMNS = [*KEY_COLUMNS, *FORECAST_COLUMNS, *OUTCOME_COLUMNS]

NOT_A_COLUMN = "{name!r} is not a column of the predictions frame ({columns})"


def prediction_columns(*names: str) -> tuple[str, ...]:
    """Return ``names`` in the frame's column order, refusing any that is not a column.

    Examples
    --------
    >>> prediction_columns("y", "mu", "area_code")
    ('area_code', 'mu', 'y')
    """
    for name in names:
        if name not in PREDICTION_COLUMNS:
            raise KeyError(NOT_A_COLUMN.format(name=name, columns=", ".join(PREDICTION_COLUMNS)))
    return tuple(c for c in PREDICTION_COLUMNS if c in names)
