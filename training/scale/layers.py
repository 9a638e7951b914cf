"""The Dask path's steps as the pandas commands run them: layer in, layer out.

With ``dask.enabled`` the commands ``harmcast ingest``, ``panel``, ``features``
and ``train`` call these functions instead of the pandas ones. Each reads the
previous layer, runs on the cluster of :func:`shared_client` and writes the
very files the pandas command writes, so every later step (backtest, audit,
snapshot, the weekly cycle) reads them unchanged. A large frame is written as
one parquet file, a partition at a time: the client holds one partition,
never the whole frame.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import dask.dataframe as dd
import pandas as pd

from training.config import Params
from training.features import feature_columns
from training.forecaster import Forecaster
from training.link.linker import RawLayout, write_link_companions
from training.panel import COVERAGE_FILE
from training.scale.cluster import describe_client, frame_config, shared_client
from training.scale.dask_features import build_features_dask
from training.scale.dask_link import DaskLinkResult, link_sources_dask
from training.scale.dask_panel import build_panel_dask, records_coverage
from training.scale.dask_train import fit_forecaster_dask

__all__ = [
    "DaskStep",
    "read_frame",
    "write_frame",
    "write_linked_dask",
    "ingest_on_dask",
    "panel_on_dask",
    "features_on_dask",
    "train_on_dask",
]


@dataclass(frozen=True)
class DaskStep:
    """What one step did on Dask: the cluster it ran on and the files it wrote.

    Attributes
    ----------
    engine : the cluster, as :func:`describe_client` names it.
    written : the files written, in the pandas command's layer.
    link : ``ingest`` only: the linkage result (its ``records`` can be computed
        only while the cluster runs).
    summary : ``panel`` and ``features``: a few numbers for the console.
    forecaster, latest : ``train`` only: the model, and the feature rows of the
        latest origin week (the input example MLflow logs).
    """

    engine: str
    written: list[Path]
    link: DaskLinkResult | None = None
    summary: dict = field(default_factory=dict)
    forecaster: Forecaster | None = None
    latest: pd.DataFrame | None = None


def read_frame(path: Path) -> dd.DataFrame:
    """Read a parquet layer file lazily (row groups become partitions)."""
    with frame_config():
        return dd.read_parquet(path)


def _arrow_schema(table, meta: pd.DataFrame):
    import pyarrow as pa

    # an all-missing text column reads as arrow "null"; later partitions hold strings
    fields = [pa.field(f.name, pa.string()) if pa.types.is_null(f.type)
              and meta[f.name].dtype.kind in "OUT" else f for f in table.schema]  # fmt: skip
    return pa.schema(fields, metadata=table.schema.metadata)


def write_frame(frame: dd.DataFrame, path: Path) -> Path:
    """Write ``frame`` to one parquet file, partition by partition; return its path.

    The file is written beside ``path`` and then renamed, so a failure never
    leaves half a layer behind.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    writer, schema = None, None
    with frame_config():
        frame = frame.reset_index(drop=True)
        try:
            for part in frame.to_delayed():
                chunk = part.compute()
                if chunk.empty:
                    continue
                table = pa.Table.from_pandas(chunk, preserve_index=False)
                if writer is None:
                    schema = _arrow_schema(table, frame._meta)
                    writer = pq.ParquetWriter(tmp, schema)
                writer.write_table(table.cast(schema))
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            frame._meta.to_parquet(tmp, index=False)
    if path.is_dir():  # a dataset folder an older version wrote
        shutil.rmtree(path)
    os.replace(tmp, path)
    return path


def write_linked_dask(result: DaskLinkResult, out_dir: Path) -> list[Path]:
    """Write the linked layer as ``training.link.write_linked`` does; return the files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = write_frame(result.records, out_dir / "records.parquet")
    return [records, *write_link_companions(result, out_dir)]


def ingest_on_dask(raw_dir: Path, params: Params, *, layout: RawLayout | None = None) -> DaskStep:
    """Link the raw layer on Dask and write ``data/02_linked`` (as ``harmcast ingest``).

    Raises
    ------
    ConfigError
        When the scheduler does not answer.
    SchemaError, LinkageError
        As ``training.link.link_sources``.
    """
    with shared_client(params.dask) as client:
        link = link_sources_dask(raw_dir, params.sources, params.link, params=params.dask,
                                 layout=layout)  # fmt: skip
        written = write_linked_dask(link, params.paths.resolve("linked"))
        return DaskStep(describe_client(client), written, link=link)


def _copy_reference(areas: pd.DataFrame, adjacency: pd.DataFrame, out_dir: Path) -> list[Path]:
    written = []
    for name, frame in (("areas", areas), ("adjacency", adjacency)):
        frame.to_parquet(out_dir / f"{name}.parquet", index=False)
        written.append(out_dir / f"{name}.parquet")
    return written


def panel_on_dask(params: Params) -> DaskStep:
    """Build the panel from ``data/02_linked`` on Dask and write ``data/03_panel``.

    ``summary`` holds ``areas``, ``weeks``, ``first``, ``last`` and ``violence``
    (the total).
    """
    linked, out = params.paths.resolve("linked"), params.paths.resolve("panel")
    areas = pd.read_parquet(linked / "areas.parquet")
    adjacency = pd.read_parquet(linked / "adjacency.parquet")
    with shared_client(params.dask) as client:
        records = read_frame(linked / "records.parquet")
        coverage = records_coverage(records)
        panel = build_panel_dask(records, areas, params=params.dask, coverage=coverage).persist()
        out.mkdir(parents=True, exist_ok=True)
        written = [write_frame(panel, out / "panel.parquet"), *_copy_reference(areas, adjacency,
                                                                               out)]  # fmt: skip
        written.append(out / COVERAGE_FILE)
        written[-1].write_text(json.dumps(coverage, indent=2) + "\n")
        weeks = panel["week_start"]
        n_areas, n_weeks, first, last, violence = dd.compute(
            panel["area_code"].nunique(), weeks.nunique(), weeks.min(), weeks.max(),
            panel["violence"].sum(),
        )  # fmt: skip
        summary = {"areas": int(n_areas), "weeks": int(n_weeks), "first": pd.Timestamp(first),
                   "last": pd.Timestamp(last), "violence": float(violence),
                   "coverage": coverage}  # fmt: skip
        return DaskStep(describe_client(client), written, summary=summary)


def _read_panel(panel_dir: Path) -> dd.DataFrame:
    panel = read_frame(panel_dir / "panel.parquet")
    # as training.panel.read_panel: the codes as text, the weeks in nanoseconds
    return panel.astype({"area_code": str, "week_start": "datetime64[ns]"})


def features_on_dask(params: Params) -> DaskStep:
    """Build the features from ``data/03_panel`` on Dask and write ``data/04_features``.

    ``summary`` holds ``rows`` and ``columns`` (the feature columns).
    """
    panel_dir, out = params.paths.resolve("panel"), params.paths.resolve("features")
    areas = pd.read_parquet(panel_dir / "areas.parquet")
    adjacency = pd.read_parquet(panel_dir / "adjacency.parquet")
    with shared_client(params.dask) as client, frame_config():
        features = build_features_dask(_read_panel(panel_dir), areas, adjacency, params.features,
                                       dask_params=params.dask).persist()  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        written = [write_frame(features, out / "features.parquet")]
        summary = {"rows": int(features.shape[0].compute()),
                   "columns": feature_columns(features._meta)}  # fmt: skip
        return DaskStep(describe_client(client), written, summary=summary)


def train_on_dask(params: Params) -> DaskStep:
    """Fit the forecaster on ``data/04_features`` with ``lightgbm.dask``.

    The caller saves and logs it as the pandas ``harmcast train`` does. The
    features stay in the partitions they are read in: the training sample
    (``max_train_rows``) is drawn there, and only the sample is spread over
    the workers.
    """
    with shared_client(params.dask) as client, frame_config():
        features = read_frame(params.paths.resolve("features") / "features.parquet")
        columns = feature_columns(features._meta)
        forecaster = fit_forecaster_dask(features, columns, params.model, client=client)
        origin = features["origin_week"].max().compute()
        latest = features.loc[features["origin_week"] == origin].compute()
        return DaskStep(describe_client(client), [], forecaster=forecaster,
                        latest=latest.reset_index(drop=True))  # fmt: skip
