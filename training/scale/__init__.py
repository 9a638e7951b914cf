"""Running the pipeline beyond one machine, on Dask (see docs/scale.md).

Linking, the panel and the features run on dask DataFrames by mapping the
pandas path's own functions over partitions; training uses ``lightgbm.dask``.
With ``dask.enabled`` the step commands run these (:mod:`training.scale.layers`).
On the same data the results equal the pandas path's (the booster agrees
closely, see :mod:`training.scale.dask_train`).
"""

from training.scale.cluster import MSG_NO_SCHEDULER, dask_client, shared_client
from training.scale.dask_features import build_features_dask
from training.scale.dask_link import DaskLinkResult, link_sources_dask
from training.scale.dask_panel import area_blocks, build_panel_dask
from training.scale.dask_train import fit_forecaster_dask
from training.scale.layers import (
    DaskStep,
    features_on_dask,
    ingest_on_dask,
    panel_on_dask,
    train_on_dask,
)
from training.scale.run import ScaleResult, run_scaled

__all__ = [
    "MSG_NO_SCHEDULER",
    "DaskLinkResult",
    "DaskStep",
    "ScaleResult",
    "area_blocks",
    "build_features_dask",
    "build_panel_dask",
    "dask_client",
    "features_on_dask",
    "fit_forecaster_dask",
    "ingest_on_dask",
    "link_sources_dask",
    "panel_on_dask",
    "run_scaled",
    "shared_client",
    "train_on_dask",
]
