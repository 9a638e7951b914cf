"""Features on Dask: ``build_features`` per area block, with a halo of neighbours.

The neighbour features of an area need its neighbours' series, which may live
in another block. Every panel row is therefore also sent to each block that
holds one of the area's neighbours (one shuffle); a block then runs
``training.features.build_features`` on its own areas plus that halo and keeps
its own areas' rows. Each row is computed from exactly the numbers the pandas
path uses, so the features are equal.
"""

from __future__ import annotations

import dask.dataframe as dd
import pandas as pd

from training.config import DaskParams, FeatureParams
from training.features import build_features
from training.scale.cluster import frame_config
from training.scale.dask_panel import BLOCK, area_blocks, partition_by_area

__all__ = ["build_features_dask", "halo_blocks"]


def halo_blocks(adjacency: pd.DataFrame, blocks: pd.Series) -> pd.DataFrame:
    """``area_code, _block``: every block that needs an area's series.

    An area is needed by its own block and by the block of each area it
    neighbours.
    """
    own = pd.DataFrame({"area_code": blocks.index.to_numpy(), BLOCK: blocks.to_numpy()})
    pairs = adjacency[adjacency["area_code"].isin(blocks.index)
                      & adjacency["neighbour_code"].isin(blocks.index)]  # fmt: skip
    halo = pd.DataFrame({"area_code": pairs["neighbour_code"].to_numpy(),
                         BLOCK: blocks.reindex(pairs["area_code"]).to_numpy()})  # fmt: skip
    need = pd.concat([own, halo], ignore_index=True).drop_duplicates()
    return need.astype({"area_code": str, BLOCK: "int64"}).reset_index(drop=True)


def _features_meta(panel_meta: pd.DataFrame, areas: pd.DataFrame, adjacency: pd.DataFrame,
                   params: FeatureParams) -> pd.DataFrame:  # fmt: skip
    """Run ``build_features`` on one zero area to learn its columns and dtypes."""
    n_weeks = max(params.min_history_weeks, 1) + max(params.horizons, default=1)
    code = str(areas["area_code"].iat[0])
    weeks = pd.date_range("2024-01-01", periods=n_weeks, freq="7D").astype("datetime64[ns]")
    panel = pd.DataFrame({"area_code": code, "week_start": weeks})
    for column in panel_meta.columns[2:]:
        panel[column] = 0.0
    return build_features(panel, areas, adjacency.iloc[:0], params).iloc[:0]


def _features_block(part: pd.DataFrame, blocks: pd.Series, areas: pd.DataFrame,
                    adjacency: pd.DataFrame, params: FeatureParams,
                    partition_info: dict | None = None) -> pd.DataFrame:  # fmt: skip
    own = blocks.index[blocks.to_numpy() == partition_info["number"]]
    panel = part.reset_index(drop=True)
    features = build_features(panel, areas, adjacency, params)
    return features.loc[features["area_code"].isin(own)].reset_index(drop=True)


def build_features_dask(
    panel: dd.DataFrame,
    areas: pd.DataFrame,
    adjacency: pd.DataFrame,
    params: FeatureParams,
    *,
    dask_params: DaskParams,
) -> dd.DataFrame:
    """Build the features of ``training.features.build_features`` per area block.

    Parameters
    ----------
    panel : the panel (any partitioning; ``build_panel_dask`` gives blocks).
    areas, adjacency, params : as ``build_features`` (broadcast to workers).
    dask_params : ``partition_areas`` (areas per block).

    Returns
    -------
    dask DataFrame
        The same rows and columns as ``build_features``; partition ``i`` holds
        the areas of block ``i``, ordered (horizon, origin week, area) within.
    """
    blocks = area_blocks(areas, dask_params)
    need = halo_blocks(adjacency, blocks)
    with frame_config():
        meta = _features_meta(panel._meta, areas, adjacency, params)
        halo = panel.merge(need, on="area_code", how="inner")
        by_block = partition_by_area(halo, blocks)
        return by_block.map_partitions(_features_block, blocks, areas, adjacency, params,
                                       meta=meta, align_dataframes=False)  # fmt: skip
