"""Features for weekly area forecasts: lags, rolling means, neighbours, season, statics.

A forecast is made at the end of ``origin_week`` for ``target_week = origin_week +
horizon`` weeks. Every feature of a row uses panel weeks up to and including
``origin_week`` only; lag 1 is the origin week itself. The work is done on area x
week matrices (one per panel column), so the default city (1,000 areas x 156
weeks x 4 horizons) takes a few seconds.

Feature names (see :func:`describe_feature` for plain words):

- ``<col>_lag<k>``: the column's count ``k - 1`` weeks before the origin week.
- ``<col>_mean<w>``: the column's weekly mean over the last ``w`` weeks (fewer at
  the start of the panel).
- ``<col>_ewm<h>``: an exponentially weighted weekly mean with a half-life of
  ``h`` weeks (recent weeks count most), normalised by the weights so far.
- ``<col>_mean_all``: the weekly mean over all weeks so far (target and police
  violence only).
- ``nb_<col>_lag<k>`` / ``nb_<col>_mean<w>`` / ``nb_<col>_ewm<h>``: the same,
  averaged over the area's neighbours (for the columns in
  :data:`NEIGHBOUR_COLUMNS`).
- ``woy_sin``, ``woy_cos``, ``holiday``: the target week's season and whether it
  holds a bank holiday in England.
- ``horizon`` and the static covariates in :data:`STATIC_COLUMNS`.
- ``evictions_lag3`` ... ``_lag8``, ``*_lead_change``, ``*_lead_ratio`` (and
  their ``nb_`` means): council indicators with lead time; ``nte_*``: late
  premises by season and bank-holiday weekend (``training.lead_features``).
- ``nr_*`` / ``nb_nr_*``: near-repeat counts and days since, from the day-grain
  linked records when they are given (``training.near_repeat``).

Each column belongs to the groups of ``training.feature_groups``, which the
backtest ablates one at a time.

Weeks a source does not cover are missing (NaN) in the panel: lags there are
missing, and means and neighbour means leave them out (missing when no week
or neighbour is observed). LightGBM reads NaN as missing natively.
"""

from __future__ import annotations

import re

import holidays
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.signal import lfilter

from training.config import FeatureParams
from training.errors import SchemaError, SensitiveFeature
from training.feature_groups import columns_without
from training.lead_features import LEAD_WORDS, council_lead_block, night_time_block
from training.near_repeat import NEAR_REPEAT_WORDS, DailyEvents, near_repeat_block, neighbour_min

__all__ = [
    "SENSITIVE_PREFIX",
    "TARGET",
    "SOURCE_COLUMNS",
    "POLICE_COLUMNS",
    "NEIGHBOUR_COLUMNS",
    "STATIC_COLUMNS",
    "KEY_COLUMNS",
    "SENSITIVE_FEATURE",
    "build_features",
    "feature_columns",
    "describe_feature",
    "assert_no_sensitive",
]

SENSITIVE_PREFIX = "audit_"
TARGET = "violence"
SOURCE_COLUMNS = (
    "police_violence",
    "police_other",
    "ae_assault",
    "ae_weapon",
    "ambulance_assault",
    "exclusions",
    "evictions",
)
POLICE_COLUMNS = ("police_violence", "police_other")
NEIGHBOUR_COLUMNS = (TARGET, "police_violence", "ae_weapon", "ambulance_assault")
STATIC_COLUMNS = ("population", "area_km2", "density", "imd_decile", "premises", "late_premises")
SEASON_COLUMNS = ("woy_sin", "woy_cos", "holiday")
KEY_COLUMNS = ("area_code", "origin_week", "target_week", "y", "y_ae")

SENSITIVE_FEATURE = "sensitive attribute(s) may not be model features: {columns}"
MISSING_COLUMN = "missing column; expected one of the panel columns {expected}"
NOT_A_GRID = "the panel is not a full area x week grid ({missing} cells missing)"
UNKNOWN_AREA = "area {code!r} of the panel is not in the areas table"

_SOURCE_WORDS = {
    TARGET: "violence (police violence plus A&E assaults)",
    "police_violence": "police-recorded violent crimes",
    "police_other": "other police-recorded crimes",
    "ae_assault": "A&E assault attendances",
    "ae_weapon": "A&E attendances for weapon assaults",
    "ambulance_assault": "ambulance call-outs for assault",
    "exclusions": "school exclusions",
    "evictions": "evictions",
}
_STATIC_WORDS = {
    "population": "resident population",
    "area_km2": "area size (km2)",
    "density": "population density (people per km2)",
    "imd_decile": "deprivation decile (IMD, 1 = most deprived)",
    "premises": "licensed premises in the area",
    "late_premises": "licensed premises open after midnight",
    "horizon": "weeks ahead the forecast is for",
    "woy_sin": "time of year (seasonal cycle, sine)",
    "woy_cos": "time of year (seasonal cycle, cosine)",
    "holiday": "the target week holds a bank holiday",
}
_NAME = re.compile(
    r"^(nb_)?(?P<col>[a-z_]+?)_(?:lag(?P<lag>\d+)|mean(?P<win>\d+|_all)|ewm(?P<half>\d+))$"
)


def assert_no_sensitive(columns: list[str] | tuple[str, ...] | pd.Index) -> None:
    """Raise when any column name starts with :data:`SENSITIVE_PREFIX`.

    Names are the first line only: the governance gate also compares every
    feature's values with the audit-only attributes (``governance.sensitive``).

    Raises
    ------
    SensitiveFeature
        Naming the sensitive columns (message :data:`SENSITIVE_FEATURE`); a
        ``ValueError`` too.
    """
    bad = [c for c in columns if str(c).startswith(SENSITIVE_PREFIX)]
    if bad:
        raise SensitiveFeature(SENSITIVE_FEATURE.format(columns=", ".join(bad)))


def build_features(
    panel: pd.DataFrame,
    areas: pd.DataFrame,
    adjacency: pd.DataFrame,
    params: FeatureParams,
    daily: DailyEvents | None = None,
) -> pd.DataFrame:
    """Build one row per (area_code, origin_week, horizon).

    Parameters
    ----------
    panel : the full area x week panel (``training.panel``).
    areas : static area table; ``audit_*`` columns are ignored.
    adjacency : ``area_code, neighbour_code`` pairs.
    params : lags, windows, horizons and the history an origin week needs.
    daily : the day-grain violent records (``training.near_repeat.daily_events``);
        None leaves the near-repeat columns out (absent, not zero).

    Returns
    -------
    DataFrame
        ``area_code, origin_week, target_week, horizon``, the feature columns,
        ``y`` (panel ``violence`` at the target week, NaN when not yet observed)
        and ``y_ae`` (``ae_assault`` at the target week). Features are float32.
    """
    weeks, codes, mats = _matrices(panel)
    n_weeks, n_areas = len(weeks), len(codes)
    first = max(params.min_history_weeks - 1, 0)
    origins = np.arange(first, n_weeks)
    spread = _neighbour_matrix(adjacency, codes)
    block = _history_block(mats, spread, params, origins)
    if daily is not None:
        block.update(_near_repeat(daily, weeks, codes, origins, spread, params))
    block.update(_static_block(areas, codes, len(origins)))
    n_h = len(params.horizons)
    horizon = np.repeat(np.asarray(params.horizons), len(origins) * n_areas)
    origin_week = np.tile(np.repeat(weeks[origins].to_numpy(), n_areas), n_h)
    target_week = origin_week + (horizon * 7).astype("timedelta64[D]")
    target_idx = np.concatenate([origins + h for h in params.horizons])
    columns: dict[str, np.ndarray] = {
        "area_code": np.tile(codes.to_numpy(), len(origins) * n_h),
        "origin_week": origin_week,
        "target_week": target_week,
        "horizon": horizon.astype(np.float32),
    }
    columns.update({name: np.tile(values, n_h) for name, values in block.items()})
    columns.update(_season(target_week))
    columns.update(night_time_block(columns["late_premises"], target_week))
    columns["y"] = _at(mats[TARGET], target_idx).ravel()
    columns["y_ae"] = _at(mats["ae_assault"], target_idx).ravel()
    features = pd.DataFrame(columns)
    assert_no_sensitive(features.columns)
    return features


def feature_columns(
    features: pd.DataFrame,
    *,
    police_only: bool = False,
    spatial: bool = True,
    without: tuple[str, ...] = (),
) -> list[str]:
    """Return the model's feature columns of ``features``.

    Parameters
    ----------
    features : a frame from :func:`build_features`.
    police_only : keep only what police data alone gives: ``police_*`` lags and
        rolling means (and their neighbour means when ``spatial``), season,
        horizon and static covariates. The target's own history is dropped
        because the target includes A&E assaults.
    spatial : keep the neighbour (``nb_*``) features.
    without : feature groups (``training.feature_groups.FEATURE_GROUPS``) to drop.
    """
    columns = [c for c in features.columns if c not in KEY_COLUMNS]
    assert_no_sensitive(columns)
    if not spatial:
        columns = [c for c in columns if not c.startswith("nb_")]
    if police_only:
        columns = [c for c in columns if _is_police_or_context(c)]
    return columns_without(columns, without)


def describe_feature(name: str) -> str:
    """Return plain words for a feature name, e.g. ``violence_mean4``.

    Examples
    --------
    >>> describe_feature("ae_assault_mean4")
    'A&E assault attendances in the last 4 weeks (weekly mean)'
    >>> describe_feature("nb_violence_lag1")
    'violence (police violence plus A&E assaults) in the origin week (neighbouring areas, mean)'
    """
    if name in _STATIC_WORDS:
        return _STATIC_WORDS[name]
    lead = _lead_words(name)
    if lead is not None:
        return lead
    match = _NAME.match(name)
    if match is None or match["col"] not in _SOURCE_WORDS:
        return name
    what = _SOURCE_WORDS[match["col"]]
    if match["lag"] is not None:
        lag = int(match["lag"])
        when = "in the origin week" if lag == 1 else f"{lag - 1} week(s) before the origin week"
    elif match["half"] is not None:
        when = f"recent weeks (weekly mean, half-life {match['half']} weeks)"
    elif match["win"] == "_all":
        when = "over all weeks so far (weekly mean)"
    else:
        when = f"in the last {match['win']} weeks (weekly mean)"
    where = " (neighbouring areas, mean)" if name.startswith("nb_") else ""
    return f"{what} {when}{where}"


def _lead_words(name: str) -> str | None:
    """Plain words for the lead-time and near-repeat names, or None."""
    where = " (neighbouring areas, mean)" if name.startswith("nb_") else ""
    base = name.removeprefix("nb_")
    if base in LEAD_WORDS:
        return LEAD_WORDS[base]
    col, _, kind = base.partition("_lead_")
    if kind and col in _SOURCE_WORDS:
        text = LEAD_WORDS[f"lead_{kind}"].format(lags="3-8", base=52)
        return f"{_SOURCE_WORDS[col]}: {text}{where}"
    if base == "nr_days_since":
        least = " (neighbouring areas, least)" if where else ""
        return NEAR_REPEAT_WORDS["nr_days_since"] + least
    if base.startswith("nr_violent_") and base.endswith("d"):
        days = base.removeprefix("nr_violent_").removesuffix("d")
        return NEAR_REPEAT_WORDS["nr_violent"].format(days=days) + where
    return None


def _is_police_or_context(column: str) -> bool:
    base = column.removeprefix("nb_")
    return base.startswith(("police_", "nte_")) or column in _STATIC_WORDS


def _matrices(panel: pd.DataFrame) -> tuple[pd.DatetimeIndex, pd.Index, dict[str, np.ndarray]]:
    """Pivot each panel column to a (week x area) float64 matrix."""
    needed = ["area_code", "week_start", TARGET, *SOURCE_COLUMNS]
    for column in needed:
        if column not in panel.columns:
            raise SchemaError("panel", MISSING_COLUMN.format(expected=needed), field=column)
    wide = panel.set_index(["week_start", "area_code"])[[TARGET, *SOURCE_COLUMNS]].unstack(
        "area_code"
    )
    wide = wide.sort_index()
    # NaN counts are weeks outside a source's coverage; only absent rows break the grid.
    missing = wide.shape[0] * wide[TARGET].shape[1] - len(panel)
    if missing:
        raise SchemaError("panel", NOT_A_GRID.format(missing=missing))
    weeks = pd.DatetimeIndex(wide.index)
    codes = wide[TARGET].columns
    mats = {
        c: wide[c].reindex(columns=codes).to_numpy(np.float64) for c in (TARGET, *SOURCE_COLUMNS)
    }
    return weeks, codes, mats


def _history_block(
    mats: dict[str, np.ndarray],
    spread: sparse.csr_matrix,
    params: FeatureParams,
    origins: np.ndarray,
) -> dict[str, np.ndarray]:
    """Lags, rolling means and council lead features at each origin, flattened origin-major."""
    block: dict[str, np.ndarray] = {}
    history: dict[str, dict[str, np.ndarray]] = {}
    for column in (TARGET, *SOURCE_COLUMNS):
        history[column] = _history(
            mats[column], params, origins, expanding=column in (TARGET, "police_violence")
        )
        for name, values in history[column].items():
            block[f"{column}_{name}"] = values
    for column in NEIGHBOUR_COLUMNS:
        for name, values in history[column].items():
            if name != "mean_all":
                block[f"nb_{column}_{name}"] = _neighbour_mean(values, spread)
    council = council_lead_block(mats, params, origins)
    block.update(council)
    block.update({f"nb_{name}": _neighbour_mean(v, spread) for name, v in council.items()})
    return {k: v.astype(np.float32).ravel() for k, v in block.items()}


def _history(
    mat: np.ndarray, params: FeatureParams, origins: np.ndarray, *, expanding: bool
) -> dict[str, np.ndarray]:
    """Lag and rolling-mean matrices (origins x areas) of one column."""
    out: dict[str, np.ndarray] = {}
    for lag in params.lags:
        out[f"lag{lag}"] = _at(mat, origins - (lag - 1))
    # Missing weeks (outside a source's coverage) are left out of every mean;
    # a mean over no observed week is missing, never zero.
    seen = np.isfinite(mat)
    filled = np.where(seen, mat, 0.0)
    zero = np.zeros((1, mat.shape[1]))
    csum = np.vstack([zero, np.cumsum(filled, axis=0)])
    ccount = np.vstack([zero, np.cumsum(seen, axis=0)])
    end = origins + 1
    with np.errstate(invalid="ignore", divide="ignore"):
        for window in params.windows:
            start = np.maximum(end - window, 0)
            n = ccount[end] - ccount[start]
            out[f"mean{window}"] = np.where(n > 0, (csum[end] - csum[start]) / n, np.nan)
        for half_life in params.ewm_half_lives:
            decay = 0.5 ** (1.0 / half_life)
            weighted = lfilter([1.0], [1.0, -decay], filled, axis=0)[origins]
            weights = lfilter([1.0], [1.0, -decay], seen.astype(float), axis=0)[origins]
            out[f"ewm{half_life}"] = np.where(weights > 0, weighted / weights, np.nan)
        if expanding:
            n = ccount[end]
            out["mean_all"] = np.where(n > 0, csum[end] / n, np.nan)
    return out


def _near_repeat(
    daily: DailyEvents,
    weeks: pd.DatetimeIndex,
    codes: pd.Index,
    origins: np.ndarray,
    spread: sparse.csr_matrix,
    params: FeatureParams,
) -> dict[str, np.ndarray]:
    """Near-repeat features of each area and its neighbours, flattened origin-major."""
    own = near_repeat_block(daily, weeks, codes, origins, params)
    block = dict(own)
    for name, values in own.items():
        nb = neighbour_min if name == "nr_days_since" else _neighbour_mean
        block[f"nb_{name}"] = nb(values, spread)
    return {k: v.astype(np.float32).ravel() for k, v in block.items()}


def _at(mat: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Rows ``idx`` of ``mat``; NaN where ``idx`` is outside the matrix."""
    ok = (idx >= 0) & (idx < mat.shape[0])
    out = np.full((len(idx), mat.shape[1]), np.nan)
    out[ok] = mat[idx[ok]]
    return out


def _neighbour_mean(values: np.ndarray, spread: sparse.csr_matrix) -> np.ndarray:
    """Mean over each area's neighbours, of those whose value is not missing."""
    seen = np.isfinite(values)
    if seen.all():
        return np.asarray(values @ spread.T)
    total = np.asarray(np.where(seen, values, 0.0) @ spread.T)
    share = np.asarray(seen.astype(float) @ spread.T)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(share > 0, total / share, np.nan)


def _neighbour_matrix(adjacency: pd.DataFrame, codes: pd.Index) -> sparse.csr_matrix:
    """Row-normalised adjacency; an area without neighbours gets NaN."""
    pos = pd.Series(np.arange(len(codes)), index=codes)
    pairs = adjacency[adjacency["area_code"].isin(codes) & adjacency["neighbour_code"].isin(codes)]
    rows = pos[pairs["area_code"]].to_numpy()
    cols = pos[pairs["neighbour_code"]].to_numpy()
    mat = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(codes), len(codes)))
    mat.data[:] = 1.0
    degree = np.asarray(mat.sum(axis=1)).ravel()
    with np.errstate(divide="ignore"):
        scale = np.where(degree > 0, 1.0 / degree, np.nan)
    return sparse.diags(scale) @ mat


def _static_block(areas: pd.DataFrame, codes: pd.Index, n_origins: int) -> dict[str, np.ndarray]:
    """Repeat the static covariates for each origin week."""
    table = areas.drop(columns=[c for c in areas.columns if c.startswith(SENSITIVE_PREFIX)])
    table = table.drop_duplicates("area_code").set_index("area_code")
    absent = codes.difference(table.index)
    if len(absent):
        raise SchemaError("areas", UNKNOWN_AREA.format(code=absent[0]), field="area_code")
    table = table.reindex(codes)
    for column in ("premises", "late_premises"):
        if column not in table.columns:
            table[column] = 0.0
    table["density"] = table["population"] / table["area_km2"].where(table["area_km2"] > 0)
    out = {}
    for column in STATIC_COLUMNS:
        if column not in table.columns:
            raise SchemaError("areas", "missing static covariate", field=column)
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(np.float32)
        out[column] = np.tile(values, n_origins)
    return out


def _season(target_week: np.ndarray) -> dict[str, np.ndarray]:
    """Week-of-year cycle and England bank-holiday flag of the target week."""
    weeks = pd.DatetimeIndex(target_week)
    unique = weeks.unique()
    years = range(unique.min().year - 1, unique.max().year + 2)
    bank = pd.DatetimeIndex(list(holidays.country_holidays("GB", subdiv="ENG", years=years)))
    monday = bank - pd.to_timedelta(bank.dayofweek, unit="D")
    flag = pd.Series(unique.isin(monday.normalize()), index=unique).astype(np.float32)
    angle = 2 * np.pi * (weeks.isocalendar().week.to_numpy(np.float64) - 1) / 52.18
    return {
        "woy_sin": np.sin(angle).astype(np.float32),
        "woy_cos": np.cos(angle).astype(np.float32),
        "holiday": flag.reindex(weeks).to_numpy(np.float32),
    }
