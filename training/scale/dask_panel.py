"""The area x week panel on Dask: records shuffled into blocks of areas.

Areas (sorted by code) are cut into blocks of ``DaskParams.partition_areas``;
partition ``i`` of the records and of the panel holds block ``i``. Each block's
panel is ``training.panel.build_panel`` on the block's records, put on the
city-wide week range (a block's own records may span fewer weeks; its missing
weeks are zeros, as in the pandas grid), then masked where a source does not
cover the week, with the city-wide coverage (``training.coverage``).
"""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd

from training.config import DaskParams
from training.coverage import source_coverage
from training.errors import LinkageError
from training.panel import (
    COUNT_COLUMNS,
    MSG_UNKNOWN_AREAS,
    PANEL_COLUMNS,
    build_panel,
    mask_uncovered,
    week_range,
)
from training.scale.cluster import frame_config

__all__ = [
    "BLOCK", "area_blocks", "partition_by_area", "build_panel_dask", "panel_meta",
    "records_coverage",
]  # fmt: skip

#: The column (then index) that carries an area's block number.
BLOCK = "_block"
MSG_NO_RECORDS = "no linked records: the panel would have no weeks"


def area_blocks(areas: pd.DataFrame, params: DaskParams) -> pd.Series:
    """Block number of each area code (index), in sorted code order."""
    codes = sorted(areas["area_code"].astype(str).unique())
    blocks = np.arange(len(codes)) // params.partition_areas
    return pd.Series(blocks, index=pd.Index(codes, name="area_code"), name=BLOCK)


def partition_by_area(frame: dd.DataFrame, blocks: pd.Series) -> dd.DataFrame:
    """Shuffle ``frame`` so that partition ``i`` holds exactly the rows of block ``i``.

    ``frame`` needs an ``area_code`` column, or a ``_block`` column already
    (rows a block needs from other blocks, such as neighbours' series).
    """
    if BLOCK not in frame.columns:
        frame = frame.assign(**{BLOCK: frame["area_code"].map(blocks, meta=(BLOCK, "int64"))})
    n_blocks = int(blocks.max()) + 1
    divisions = [*range(n_blocks), n_blocks - 1]
    return frame.set_index(BLOCK, divisions=divisions)


def panel_meta() -> pd.DataFrame:
    """Return the empty panel frame (column names and dtypes)."""
    meta = pd.DataFrame({"area_code": pd.Series(dtype=str),
                         "week_start": pd.Series(dtype="datetime64[ns]")})  # fmt: skip
    for column in PANEL_COLUMNS[2:]:
        meta[column] = pd.Series(dtype="float64")
    return meta


def _week_bounds(part: pd.DataFrame) -> pd.DataFrame:
    if part.empty:
        return pd.DataFrame({"first": pd.Series(dtype="datetime64[ns]"),
                             "last": pd.Series(dtype="datetime64[ns]")})  # fmt: skip
    weeks = week_range(part)
    return pd.DataFrame({"first": [weeks[0]], "last": [weeks[-1]]})


def records_coverage(records: dd.DataFrame) -> dict[str, dict]:
    """Return the city-wide coverage of the linked records (one small count per day)."""
    counts = records.groupby(["source", "date", "grain"]).size().compute()
    return source_coverage(counts.rename("n").reset_index())


def _panel_block(part: pd.DataFrame, blocks: pd.Series, weeks: pd.DatetimeIndex,
                 coverage: dict, partition_info: dict | None = None) -> pd.DataFrame:  # fmt: skip
    if partition_info is None:  # dask's meta probe
        return panel_meta()
    codes = blocks.index[blocks.to_numpy() == partition_info["number"]]
    grid = pd.MultiIndex.from_product([codes, weeks], names=["area_code", "week_start"])
    if part.empty:
        panel = pd.DataFrame(0.0, index=grid, columns=PANEL_COLUMNS[2:]).reset_index()
    else:
        records = part.reset_index(drop=True)
        panel = build_panel(records, pd.DataFrame({"area_code": codes}), coverage=coverage)
        panel = panel.set_index(["area_code", "week_start"]).reindex(grid, fill_value=0.0)
        panel = panel.reset_index()
    panel = mask_uncovered(panel, coverage)
    panel = panel[PANEL_COLUMNS].astype({"area_code": str, "week_start": "datetime64[ns]"})
    panel.columns.name = None
    return panel.astype({c: "float64" for c in [*COUNT_COLUMNS, "violence"]})


def build_panel_dask(
    records: dd.DataFrame,
    areas: pd.DataFrame,
    *,
    params: DaskParams,
    coverage: dict[str, dict] | None = None,
) -> dd.DataFrame:
    """Count linked records per area and ISO week, one partition per area block.

    Parameters
    ----------
    records : the linked records (``training.link.RECORD_COLUMNS``).
    areas : the area reference; every area gets a row for every week.
    params : ``partition_areas`` (areas per block).
    coverage : the records' coverage (default: :func:`records_coverage`).

    Returns
    -------
    dask DataFrame
        The frame ``training.panel.build_panel`` returns, partition ``i``
        holding block ``i`` (see :func:`area_blocks`), sorted by area then week
        within a partition.

    Raises
    ------
    LinkageError
        As ``build_panel``: unknown area codes, or no records.
    """
    blocks = area_blocks(areas, params)
    with frame_config():
        unknown = records.loc[~records["area_code"].isin(list(blocks.index))]
        bounds = records.map_partitions(_week_bounds, meta=_week_bounds(records._meta))
        n_unknown, example, bounds = dd.compute(
            unknown.shape[0], unknown["area_code"].head(1, npartitions=-1), bounds
        )
        if n_unknown:
            raise LinkageError(MSG_UNKNOWN_AREAS.format(n=int(n_unknown), example=example.iat[0]))
        if bounds.empty:
            raise LinkageError(MSG_NO_RECORDS)
        weeks = pd.date_range(bounds["first"].min(), bounds["last"].max(), freq="7D",
                              name="week_start").astype("datetime64[ns]")  # fmt: skip
        coverage = records_coverage(records) if coverage is None else coverage
        by_area = partition_by_area(records, blocks)
        return by_area.map_partitions(_panel_block, blocks, weeks, coverage, meta=panel_meta(),
                                      align_dataframes=False)  # fmt: skip
