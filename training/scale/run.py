"""The Dask path end to end: raw files to a trained Forecaster, and its layers on disk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import dask.dataframe as dd
import pandas as pd

from training.config import Params
from training.features import feature_columns
from training.forecaster import Forecaster
from training.scale.dask_features import build_features_dask
from training.scale.dask_link import DaskLinkResult, link_sources_dask
from training.scale.dask_panel import build_panel_dask
from training.scale.dask_train import fit_forecaster_dask
from training.scale.layers import write_frame, write_linked_dask

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["STEPS", "ScaleResult", "run_scaled", "write_scaled"]

STEPS = ("ingest", "panel", "features", "train")
Step = Literal["ingest", "panel", "features", "train"]


@dataclass(frozen=True)
class ScaleResult:
    """What :func:`run_scaled` produced (``None`` for steps not run)."""

    link: DaskLinkResult
    panel: dd.DataFrame | None = None
    features: dd.DataFrame | None = None
    forecaster: Forecaster | None = None


def run_scaled(
    raw_dir: Path, params: Params, *, client: Client, until: Step = "train", progress=None
) -> ScaleResult:
    """Link, build the panel and features, and train, on the Dask cluster of ``client``.

    Parameters
    ----------
    raw_dir : the raw layer.
    params : the whole configuration (``sources``, ``link``, ``features``,
        ``model`` and ``dask`` are used).
    client : a connected ``distributed.Client`` (see ``dask_client``).
    until : the last step to run.
    progress : a ``rich.progress.Progress`` showing one step at a time.

    Returns
    -------
    ScaleResult
        Lazy frames (``panel`` and ``features`` persisted on the cluster) and
        the forecaster.
    """
    wanted = STEPS[: STEPS.index(until) + 1]
    task = progress.add_task("dask", total=len(wanted)) if progress is not None else None

    def step(label: str) -> None:
        if progress is not None:
            progress.update(task, advance=1, description=label)

    link = link_sources_dask(raw_dir, params.sources, params.link, params=params.dask)
    step("linked")
    if "panel" not in wanted:
        return ScaleResult(link)
    panel = build_panel_dask(link.records, link.areas, params=params.dask).persist()
    step("panel")
    if "features" not in wanted:
        return ScaleResult(link, panel)
    features = build_features_dask(panel, link.areas, link.adjacency, params.features,
                                   dask_params=params.dask).persist()  # fmt: skip
    step("features")
    if "train" not in wanted:
        return ScaleResult(link, panel, features)
    columns = feature_columns(features._meta)
    forecaster = fit_forecaster_dask(features, columns, params.model, client=client)
    step("trained")
    return ScaleResult(link, panel, features, forecaster)


def write_scaled(result: ScaleResult, params: Params) -> list[Path]:
    """Write each computed layer where the pandas path writes it; return the paths.

    As the pandas commands: ``records.parquet``, ``panel.parquet`` and
    ``features.parquet`` are single files, written a partition at a time.
    """
    written = write_linked_dask(result.link, params.paths.resolve("linked"))
    if result.panel is not None:
        out = params.paths.resolve("panel")
        out.mkdir(parents=True, exist_ok=True)
        written.append(write_frame(result.panel, out / "panel.parquet"))
        for name in ("areas", "adjacency"):
            frame: pd.DataFrame = getattr(result.link, name)
            frame.to_parquet(out / f"{name}.parquet", index=False)
            written.append(out / f"{name}.parquet")
    if result.features is not None:
        out = params.paths.resolve("features")
        out.mkdir(parents=True, exist_ok=True)
        written.append(write_frame(result.features, out / "features.parquet"))
    if result.forecaster is not None:
        written.append(result.forecaster.save(params.paths.resolve("models")))
    return written
