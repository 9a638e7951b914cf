"""Linking on Dask: sources read on the workers, records matched per partition.

Each source is read by its own task (the readers of ``training.sources``) and
stays on the worker that read it: the client never holds the records. They are
split into partitions of about ``DaskParams.partition_rows`` rows, and every
partition is matched to areas by the same function the pandas path uses. Free
text is resolved once, for the distinct ``(site, text)`` pairs of the whole
run (the A&E catchments need all of a site's records), and the table is
shared with the workers with the area reference and boundaries. Matching a
record needs nothing else, so the result equals ``link_sources`` row for row.
The pandas path's own steps (reading, the reference, matching, premises,
adjacency) are called rather than copied, so the two paths cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd

from training.config import DaskParams, LinkParams, SourceParams
from training.coverage import source_coverage
from training.errors import LinkageError
from training.link import linker as pandas_link
from training.link.report import build_report
from training.link.text import location_table
from training.scale.cluster import frame_config
from training.sources._csv import QUARANTINE_COLUMNS

__all__ = ["DaskLinkResult", "link_sources_dask"]

_OUT = ("_code", "_method", "_reason", "_field", "_value", "_rescue")


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


def _aligned(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    # police alone carries ``area_name``; the pandas path's concat leaves it NaN elsewhere
    return frame.reindex(columns=columns)


def _read_all(layout, sources: SourceParams, raw_dir: Path):
    """Read every source on the workers: ``(candidates, quarantines, source names)``.

    ``candidates`` is a dask DataFrame with one partition per source, in the
    pandas path's order; only the quarantines and the empty frames (for the
    columns) come back to the client.
    """
    parts = _source_layouts(layout)
    if not parts:
        raise LinkageError(pandas_link.MSG_NO_SOURCES.format(raw_dir=raw_dir))
    reads = dask.persist(*[dask.delayed(_read_one, nout=3)(part, sources, raw_dir)
                           for part in parts])  # fmt: skip
    heads, quarantines, names = dask.compute(
        [dask.delayed(lambda f: f.iloc[:0])(read[0]) for read in reads],
        [read[1] for read in reads],
        [read[2] for read in reads],
    )
    meta = pd.concat(heads, ignore_index=True)
    columns = list(meta.columns)
    frames = [dask.delayed(_aligned)(read[0], columns) for read in reads]
    candidates = dd.from_delayed(frames, meta=meta.reindex(columns=columns), verify_meta=False)
    return candidates, [q for qs in quarantines for q in qs], [n for ns in names for n in ns]


def _split(frame: dd.DataFrame, partition_rows: int) -> dd.DataFrame:
    """Split ``frame`` into partitions of about ``partition_rows`` rows, in order."""
    rows = int(frame.map_partitions(len).sum().compute())
    return frame.repartition(npartitions=max(1, int(np.ceil(rows / partition_rows))))


def _areas(layout, candidates: dd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Return the area reference; police records reach the client only to derive one."""
    has_file = layout.areas_file is not None or (
        layout.reference is not None and (layout.reference / "areas.csv").is_file()
    )
    police = candidates.loc[candidates["source"] == "police"]
    return pandas_link.area_reference(layout, candidates._meta if has_file else police.compute())


def _link_partition(part, reference, link: LinkParams) -> pd.DataFrame:
    areas, boundaries, locations = reference
    if part.empty:
        return part.assign(**{name: pd.Series(dtype=str) for name in _OUT})
    found = pandas_link.match_areas(part, areas, boundaries, pd.DataFrame(), link,
                                    locations=locations)  # fmt: skip
    return part.assign(**{name: pd.Series(values, index=part.index, dtype=str)
                          for name, values in zip(_OUT, found, strict=True)})  # fmt: skip


def _records(part: pd.DataFrame) -> pd.DataFrame:
    ok = part.loc[part["_reason"] == ""]
    records = ok.assign(area_code=ok["_code"], link_method=ok["_method"])
    is_day = records["grain"] == "day"
    week = records["date"] - pd.to_timedelta(records["date"].dt.weekday, unit="D")
    return records.assign(week_start=week.where(is_day))[pandas_link.RECORD_COLUMNS]


def _location_table(candidates: dd.DataFrame, gazetteer: pd.DataFrame, link: LinkParams):
    """Resolve the run's distinct ``(site, text)`` pairs once, on the client."""
    pairs = candidates.loc[pandas_link.text_rows(candidates), ["site", "location"]]
    pairs = pairs.drop_duplicates().compute()
    return location_table(pairs["location"], gazetteer, min_score=link.fuzzy_min_score,
                          site=pairs["site"])  # fmt: skip


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
    with frame_config():
        candidates, quarantines, names = _read_all(layout, sources, Path(raw_dir))
        areas, reference = _areas(layout, candidates)
        boundaries, gazetteer = pandas_link.reference_data(layout, areas)
        frame = _split(candidates, params.partition_rows)
        shared = dask.delayed((areas, boundaries, _location_table(candidates, gazetteer, link)))
        meta = _link_partition(candidates._meta, (areas, boundaries, None), link)
        matched = frame.map_partitions(_link_partition, shared, link, meta=meta).persist()
        records = matched.map_partitions(_records, meta=_records(meta))
        del frame, candidates, shared  # the workers keep only the matched partitions
        bad = matched.loc[matched["_reason"] != ""].compute()
        ok = matched.loc[matched["_reason"] == ""]
        linked, rescued, per_day = dask.compute(
            records.groupby(["source", "link_method"]).size(),
            ok.groupby(["source", "_rescue"]).size(),
            records.groupby(["source", "date", "grain"]).size(),
        )
    linked = linked.rename("n").reset_index()
    rescued = rescued.rename("n").reset_index().rename(columns={"_rescue": "rescue"})
    coverage = source_coverage(per_day.rename("n").reset_index())
    bad = bad.assign(field=bad["_field"], value=bad["_value"], reason=bad["_reason"])
    counts, premises_q, premises = pandas_link.link_premises(layout, areas, boundaries, link)
    areas = areas.merge(counts, left_on="area_code", right_index=True, how="left")
    quarantine = pd.concat([*quarantines, bad[QUARANTINE_COLUMNS], *premises_q], ignore_index=True)
    quarantine = quarantine.astype({"row": "int64"}).reset_index(drop=True)
    if premises is not None:
        names.append("premises")
        by_method = premises.groupby(["source", "link_method"]).size().rename("n").reset_index()
        linked = pd.concat([linked, by_method], ignore_index=True)
        saved = premises.groupby(["source", "rescue"]).size().rename("n").reset_index()
        rescued = pd.concat([rescued, saved], ignore_index=True)
    derived = reference == pandas_link.REFERENCE_DERIVED
    return DaskLinkResult(
        records=records,
        areas=areas.reset_index(drop=True),
        adjacency=pandas_link.area_adjacency(layout, areas, boundaries),
        quarantine=quarantine,
        report=build_report(
            linked, quarantine, sources=names, rescued=rescued, coverage=coverage
        ),  # fmt: skip
        reference=reference,
        notes=[f"area reference {reference}"] if derived else [],
    )
