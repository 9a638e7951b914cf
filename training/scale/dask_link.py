"""Linking on Dask: sources read side by side, records matched per partition.

Each source is read by its own task (the readers of ``training.sources``).
The candidate records are then split into partitions of
``DaskParams.partition_rows`` rows and every partition is matched to areas by
the same function the pandas path uses, with the area reference, boundaries
and gazetteer broadcast to the workers. Matching a record needs nothing but
the record and the reference, so the result equals ``link_sources`` row for
row. The pandas path's own steps (reading, the reference, matching, premises,
adjacency) are called rather than copied, so the two paths cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd

from training import link as pandas_link
from training.config import DaskParams, LinkParams, SourceParams
from training.errors import LinkageError
from training.link_report import build_report
from training.scale.cluster import frame_config
from training.sources._csv import QUARANTINE_COLUMNS

__all__ = ["DaskLinkResult", "link_sources_dask"]

_OUT = ("_code", "_method", "_reason", "_field", "_value")


@dataclass(frozen=True)
class DaskLinkResult:
    """As ``training.link.LinkResult``, with ``records`` a dask DataFrame."""

    records: dd.DataFrame
    areas: pd.DataFrame
    adjacency: pd.DataFrame
    quarantine: pd.DataFrame
    report: dict[str, dict]
    reference: str = pandas_link.REFERENCE_FILE
    notes: list[str] = field(default_factory=list)

    def to_pandas(self) -> pandas_link.LinkResult:
        """Compute the records and return the pandas ``LinkResult``."""
        records = self.records.compute().reset_index(drop=True)
        return pandas_link.LinkResult(records, self.areas, self.adjacency, self.quarantine,
                                      self.report, self.reference, list(self.notes))  # fmt: skip


def _source_layouts(layout: pandas_link.RawLayout) -> list[pandas_link.RawLayout]:
    """One layout per source folder, in the order the pandas path reads them."""
    names = ("police", "istv", "ambulance", "council")
    return [pandas_link.RawLayout(**{name: getattr(layout, name)})
            for name in names if getattr(layout, name) is not None]  # fmt: skip


def _read_one(layout, sources, raw_dir):
    return pandas_link.read_candidates(layout, sources, lambda _label: None, raw_dir)


def _read_all(layout, sources: SourceParams, raw_dir: Path):
    parts = _source_layouts(layout)
    if not parts:
        raise LinkageError(pandas_link.MSG_NO_SOURCES.format(raw_dir=raw_dir))
    tasks = [dask.delayed(_read_one)(part, sources, raw_dir) for part in parts]
    read = dask.compute(*tasks)
    frames = [frame for frame, _, _ in read]
    quarantines = [q for _, qs, _ in read for q in qs]
    names = [n for _, _, ns in read for n in ns]
    return pd.concat(frames, ignore_index=True), quarantines, names


def _link_partition(part, areas, boundaries, gazetteer, link: LinkParams) -> pd.DataFrame:
    if part.empty:
        return part.assign(**{name: pd.Series(dtype=str) for name in _OUT})
    found = pandas_link.match_areas(part, areas, boundaries, gazetteer, link)
    return part.assign(**{name: pd.Series(values, index=part.index, dtype=str)
                          for name, values in zip(_OUT, found, strict=True)})  # fmt: skip


def _records(part: pd.DataFrame) -> pd.DataFrame:
    ok = part.loc[part["_reason"] == ""]
    records = ok.assign(area_code=ok["_code"], link_method=ok["_method"])
    is_day = records["grain"] == "day"
    week = records["date"] - pd.to_timedelta(records["date"].dt.weekday, unit="D")
    return records.assign(week_start=week.where(is_day))[pandas_link.RECORD_COLUMNS]


def link_sources_dask(
    raw_dir: Path,
    sources: SourceParams,
    link: LinkParams,
    *,
    params: DaskParams,
    layout: pandas_link.RawLayout | None = None,
) -> DaskLinkResult:
    """Link every source under ``raw_dir`` on the current Dask client.

    Parameters
    ----------
    raw_dir, sources, link, layout : as ``training.link.link_sources``.
    params : partition sizes.

    Returns
    -------
    DaskLinkResult
        ``records`` partitioned by row (not yet by area); everything else, as
        in the pandas path, in memory (it is small).

    Raises
    ------
    SchemaError, LinkageError
        As ``training.link.link_sources``.
    """
    layout = layout or pandas_link.RawLayout.from_raw_dir(raw_dir)
    candidates, quarantines, names = _read_all(layout, sources, Path(raw_dir))
    areas, reference = pandas_link.area_reference(layout, candidates)
    boundaries, gazetteer = pandas_link.reference_data(layout, areas)
    n_parts = max(1, int(np.ceil(len(candidates) / params.partition_rows)))
    with frame_config():
        frame = dd.from_pandas(candidates, npartitions=n_parts, sort=False)
        meta = _link_partition(candidates.iloc[:0], areas, boundaries, gazetteer, link)
        matched = frame.map_partitions(_link_partition, areas, boundaries, gazetteer, link,
                                       meta=meta).persist()  # fmt: skip
        records = matched.map_partitions(_records, meta=_records(meta))
        bad = matched.loc[matched["_reason"] != ""].compute()
        linked = records[["source", "link_method"]].compute()
    bad = bad.assign(field=bad["_field"], value=bad["_value"], reason=bad["_reason"])
    counts, premises_q, premises = pandas_link.link_premises(layout, areas, boundaries, link)
    areas = areas.merge(counts, left_on="area_code", right_index=True, how="left")
    quarantine = pd.concat([*quarantines, bad[QUARANTINE_COLUMNS], *premises_q], ignore_index=True)
    quarantine = quarantine.astype({"row": "int64"}).reset_index(drop=True)
    if premises is not None:
        names.append("premises")
        linked = pd.concat([linked, premises[["source", "link_method"]]], ignore_index=True)
    derived = reference == pandas_link.REFERENCE_DERIVED
    return DaskLinkResult(
        records=records,
        areas=areas.reset_index(drop=True),
        adjacency=pandas_link.area_adjacency(layout, areas, boundaries),
        quarantine=quarantine,
        report=build_report(linked, quarantine, sources=names),
        reference=reference,
        notes=[f"area reference {reference}"] if derived else [],
    )
