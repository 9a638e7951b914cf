"""Give every record an area and an ISO week, or quarantine it with a reason.

An area code is used where a record gives one; else its coordinates (point in
polygon when boundaries exist, else the nearest area centroid); else its free
text through the gazetteer. Every record read is either linked or quarantined.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from training.config import LinkParams, SourceParams
from training.coverage import source_coverage
from training.errors import LinkageError
from training.link.geo import adjacency_from_boundaries, match_points
from training.link.report import build_report, report_markdown
from training.link.text import lookup_locations, match_locations
from training.sources import ambulance, council, istv, police_uk
from training.sources import areas as area_ref
from training.sources._csv import QUARANTINE_COLUMNS, QUARANTINE_REASONS

__all__ = [
    "QUARANTINE_REASONS", "RECORD_COLUMNS", "LINK_METHODS", "MSG_NO_SOURCES", "MSG_NO_REFERENCE",
    "REFERENCE_FILE", "REFERENCE_DERIVED", "RESCUE_SWAPPED", "RawLayout", "LinkResult",
    "read_candidates",
    "area_reference", "reference_data", "text_rows", "match_areas", "link_premises",
    "area_adjacency", "link_sources", "write_linked", "write_link_companions",
]  # fmt: skip

RECORD_COLUMNS = ["source", "record_id", "area_code", "date", "grain", "week_start",
                  "category", "is_violence", "link_method"]  # fmt: skip
LINK_METHODS = ("code", "polygon", "nearest", "gazetteer_exact", "gazetteer_fuzzy")
MSG_NO_SOURCES = (
    "no source folders under {raw_dir} (looked for police/, istv/, ambulance/, council/)"
)
MSG_NO_REFERENCE = (
    "no area reference: reference/areas.csv is missing and there are no police "
    "records with area codes to derive one from"
)
RESCUE_SWAPPED = "repaired_swapped_coordinates"
REFERENCE_FILE = "reference/areas.csv"
REFERENCE_DERIVED = "derived from the area codes in the police records (no areas file)"
# Quarantine ``field`` per source for (area code, coordinates, free text).
_FIELDS = {
    "police": ("LSOA code", "Latitude", "Location"),
    "istv": ("", "", "location_description"),
    "ambulance": ("", "latitude", "latitude"),
    "exclusions": ("area_code", "", "area_code"),
    "evictions": ("area_code", "", "area_code"),
    "premises": ("", "latitude", "latitude"),
}


@dataclass(frozen=True)
class RawLayout:
    """Where each source's files are; ``None`` means the source is not read."""

    police: Path | None = None
    istv: Path | None = None
    ambulance: Path | None = None
    council: Path | None = None
    reference: Path | None = None
    areas_file: Path | None = None

    @classmethod
    def from_raw_dir(cls, raw_dir: Path) -> RawLayout:
        """Use the standard sub-folders of ``raw_dir`` that exist."""
        raw_dir = Path(raw_dir)

        def _opt(name: str) -> Path | None:
            return raw_dir / name if (raw_dir / name).is_dir() else None

        return cls(*(_opt(n) for n in ("police", "istv", "ambulance", "council", "reference")))


@dataclass(frozen=True)
class LinkResult:
    """Linked records, the area reference, the quarantine and the report."""

    records: pd.DataFrame
    areas: pd.DataFrame
    adjacency: pd.DataFrame
    quarantine: pd.DataFrame
    report: dict[str, dict]
    reference: str = REFERENCE_FILE
    notes: list[str] = field(default_factory=list)


def read_candidates(layout: RawLayout, sources: SourceParams, step, raw_dir: Path):
    """Read each source of ``layout``: ``(candidates, quarantines, source names)``.

    ``step(label)`` is called before each source; no source at all is a ``LinkageError``.
    """
    frames, quarantines, names = [], [], []
    mf = set(sources.month_first)
    readers = [
        ("police", layout.police, lambda p: police_uk.read_police(
            p, violent_crime_types=sources.violent_crime_types, month_first="police" in mf)),
        ("istv", layout.istv, lambda p: istv.read_istv(p, month_first="istv" in mf)),
        ("ambulance", layout.ambulance, lambda p: ambulance.read_ambulance(
            p, assault_categories=sources.ambulance_assault_categories,
            month_first="ambulance" in mf)),
        ("exclusions", layout.council, lambda p: council.read_exclusions(
            p / "school_exclusions.csv", month_first="council" in mf)),
        ("evictions", layout.council, lambda p: council.read_evictions(
            p / "evictions.csv", month_first="council" in mf)),
    ]  # fmt: skip
    for name, folder, reader in readers:
        if folder is None:
            continue
        step(f"reading {name}")
        records, quarantine = reader(Path(folder))
        frames.append(records)
        quarantines.append(quarantine)
        names.append(name)
    if not frames:
        raise LinkageError(MSG_NO_SOURCES.format(raw_dir=raw_dir))
    return pd.concat(frames, ignore_index=True), quarantines, names


def area_reference(layout: RawLayout, candidates: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Return the areas and where they came from (the areas file, else derived)."""
    areas_file = layout.areas_file
    if areas_file is None and layout.reference is not None:
        areas_file = layout.reference / "areas.csv"
    if areas_file is not None and Path(areas_file).is_file():
        return area_ref.read_areas(areas_file), str(areas_file)
    derived = area_ref.derive_areas(candidates.loc[candidates["source"] == "police"])
    if derived.empty:
        raise LinkageError(MSG_NO_REFERENCE)
    return derived, REFERENCE_DERIVED


def text_rows(frame: pd.DataFrame) -> pd.Series:
    """Return which of ``frame``'s rows are linked by free text (no area code, no point)."""
    return (frame["area_code"] == "") & frame["latitude"].isna()


def match_areas(frame, areas, boundaries, gazetteer, link: LinkParams, *, locations=None):
    """Return (area_code, method, reason, field, value, rescue) arrays for ``frame``'s rows.

    By area code, else coordinates, else free text; ``reason`` is empty when linked.
    ``rescue`` names the rules a linked row needed (``frame``'s own ``rescue``
    from reading, plus ``repaired_swapped_coordinates`` and the location rules
    of ``training.link.text``), ``;``-separated. ``locations`` is a
    ``training.link.text.location_table`` built from all the run's text rows
    (the Dask path builds it once); without it the text rows of ``frame`` are
    matched here.
    """
    n = len(frame)
    code, method = np.full(n, "", dtype=object), np.full(n, "", dtype=object)
    reason, fld = np.full(n, "", dtype=object), np.full(n, "", dtype=object)
    value = np.full(n, "", dtype=object)
    rule = np.full(n, "", dtype=object)
    fields = frame["source"].map(_FIELDS)
    has_code = (frame["area_code"] != "").to_numpy()
    known = frame["area_code"].isin(set(areas["area_code"])).to_numpy()
    code[has_code & known], method[has_code & known] = frame["area_code"][has_code & known], "code"
    bad = has_code & ~known
    reason[bad], fld[bad] = "unknown_area_code", fields[bad].str[0]
    value[bad] = frame["area_code"][bad]
    has_xy = ~has_code & frame["latitude"].notna().to_numpy()
    if has_xy.any():
        pts = frame.loc[has_xy]
        found = match_points(pts["latitude"], pts["longitude"], areas=areas,
                             boundaries=boundaries, link=link)  # fmt: skip
        hit = found["area_code"].to_numpy() != ""
        idx = np.flatnonzero(has_xy)
        code[idx[hit]], method[idx[hit]] = (
            found["area_code"].to_numpy()[hit],
            found["method"].iat[0],
        )
        rule[idx[found["swapped"].to_numpy()]] = RESCUE_SWAPPED
        miss = idx[~hit]
        reason[miss], fld[miss] = "outside_all_areas", fields.iloc[miss].str[1]
        value[miss] = (
            pts["latitude"].astype(str).to_numpy()[~hit]
            + ","
            + pts["longitude"].astype(str).to_numpy()[~hit]
        )
    rest = text_rows(frame).to_numpy()
    if rest.any():
        texts = frame.loc[rest, "location"]
        sites = frame.loc[rest, "site"] if "site" in frame else None
        found = (
            match_locations(texts, gazetteer, min_score=link.fuzzy_min_score, site=sites)
            if locations is None
            else lookup_locations(locations, texts, sites)
        )
        idx = np.flatnonzero(rest)
        code[idx], method[idx] = found["area_code"].to_numpy(), found["method"].to_numpy()
        reason[idx], fld[idx] = found["reason"].to_numpy(), fields.iloc[idx].str[2]
        value[idx] = texts.to_numpy()
        if "rule" in found:
            rule[idx] = found["rule"].to_numpy()
    return code, method, reason, fld, value, _join_rescues(frame, rule)


def _join_rescues(frame: pd.DataFrame, rule: np.ndarray) -> np.ndarray:
    read = (
        frame["rescue"].fillna("").astype(str).to_numpy(dtype=object)
        if "rescue" in frame
        else np.full(len(frame), "", dtype=object)
    )
    both = (read != "") & (rule != "")
    out = np.where(read != "", read, rule).astype(object)
    out[both] = read[both] + ";" + rule[both]
    return out


def link_premises(layout: RawLayout, areas, boundaries, link: LinkParams):
    """Count (late) licensed premises per area: ``(counts, quarantines, linked or None)``."""
    path = None if layout.council is None else layout.council / "licensed_premises.csv"
    counts = pd.DataFrame({"premises": 0, "late_premises": 0}, index=areas["area_code"])
    if path is None or not path.is_file():
        return counts, [], None
    premises, quarantine = council.read_premises(path)
    frame = premises.assign(source="premises", area_code="", location="")
    code, method, reason, fld, value, rescue = match_areas(
        frame, areas, boundaries, pd.DataFrame(), link
    )
    linked = premises.assign(area_code=code, link_method=method, source="premises", rescue=rescue)
    ok = reason == ""
    grouped = linked.loc[ok].groupby("area_code")["late"].agg(["size", "sum"])
    counts["premises"] = grouped["size"].reindex(counts.index, fill_value=0).astype("int64")
    counts["late_premises"] = grouped["sum"].reindex(counts.index, fill_value=0).astype("int64")
    bad = frame.loc[~ok].assign(field=fld[~ok], value=value[~ok], reason=reason[~ok])
    return counts, [quarantine, bad[QUARANTINE_COLUMNS]], linked.loc[ok]


def area_adjacency(layout: RawLayout, areas, boundaries) -> pd.DataFrame:
    """Read ``adjacency.csv``, else derive it from the boundaries, else return none."""
    path = None if layout.reference is None else layout.reference / "adjacency.csv"
    if path is not None and path.is_file():
        return area_ref.read_adjacency(path, areas)
    if boundaries is not None:
        return area_ref.symmetric(adjacency_from_boundaries(*boundaries))
    return pd.DataFrame({"area_code": pd.Series(dtype=str), "neighbour_code": pd.Series(dtype=str)})


def link_sources(
    raw_dir: Path,
    sources: SourceParams,
    link: LinkParams,
    *,
    layout: RawLayout | None = None,
    progress=None,
) -> LinkResult:
    """Read every source under ``raw_dir`` and link its records to areas.

    Parameters
    ----------
    raw_dir : the raw layer (``police/``, ``istv/``, ``ambulance/``,
        ``council/``, ``reference/``); missing folders are not read.
    sources, link : the step's parameters.
    layout : explicit source folders (overrides ``raw_dir``).
    progress : a ``rich.progress.Progress`` to show one step per source.

    Returns
    -------
    LinkResult
        ``records`` (see ``RECORD_COLUMNS``), ``areas`` (with ``premises`` and
        ``late_premises``), ``adjacency``, ``quarantine`` and ``report``.

    Raises
    ------
    SchemaError
        When a file is structurally wrong (empty, unreadable, missing column).
    LinkageError
        When no source folder or no area reference exists.
    """
    layout = layout or RawLayout.from_raw_dir(raw_dir)
    task = progress.add_task("ingest", total=8) if progress is not None else None

    def step(label: str) -> None:
        if progress is not None:
            progress.update(task, advance=1, description=label)

    candidates, quarantines, names = read_candidates(layout, sources, step, raw_dir)
    step("area reference")
    areas, reference = area_reference(layout, candidates)
    boundaries, gazetteer = reference_data(layout, areas)
    step("linking records")
    code, method, reason, fld, value, rescue = match_areas(
        candidates, areas, boundaries, gazetteer, link
    )
    ok = reason == ""
    records = candidates.loc[ok].assign(
        area_code=code[ok], link_method=method[ok], rescue=rescue[ok]
    )
    rescued = records[["source", "rescue"]]
    is_day = records["grain"] == "day"
    week = records["date"] - pd.to_timedelta(records["date"].dt.weekday, unit="D")
    coverage = source_coverage(records)
    records = records.assign(week_start=week.where(is_day))[RECORD_COLUMNS]
    bad = candidates.loc[~ok].assign(field=fld[~ok], value=value[~ok], reason=reason[~ok])
    step("licensed premises")
    counts, premises_q, premises = link_premises(layout, areas, boundaries, link)
    areas = areas.merge(counts, left_on="area_code", right_index=True, how="left")
    quarantine = pd.concat([*quarantines, bad[QUARANTINE_COLUMNS], *premises_q], ignore_index=True)
    quarantine = quarantine.astype({"row": "int64"}).reset_index(drop=True)
    linked = records[["source", "link_method"]]
    if premises is not None:
        names.append("premises")
        linked = pd.concat([linked, premises[["source", "link_method"]]], ignore_index=True)
        rescued = pd.concat([rescued, premises[["source", "rescue"]]], ignore_index=True)
    step("adjacency and report")
    report = build_report(linked, quarantine, sources=names, rescued=rescued, coverage=coverage)
    notes = [] if reference != REFERENCE_DERIVED else [f"area reference {reference}"]
    return LinkResult(
        records=records.reset_index(drop=True),
        areas=areas.reset_index(drop=True),
        adjacency=area_adjacency(layout, areas, boundaries),
        quarantine=quarantine,
        report=report,
        reference=reference,
        notes=notes,
    )


def write_linked(result: LinkResult, out_dir: Path) -> list[Path]:
    """Write the linked layer; return the files written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result.records.to_parquet(out_dir / "records.parquet", index=False)
    return [out_dir / "records.parquet", *write_link_companions(result, out_dir)]


def write_link_companions(result, out_dir: Path) -> list[Path]:
    """Write the linked layer's files other than the records (any engine's result)."""
    paths = [out_dir / n for n in ("areas.parquet", "adjacency.parquet", "quarantine.csv",
                                   "linkage_report.json", "linkage_report.md")]  # fmt: skip
    result.areas.to_parquet(paths[0], index=False)
    result.adjacency.to_parquet(paths[1], index=False)
    result.quarantine.to_csv(paths[2], index=False)
    paths[3].write_text(json.dumps(result.report, indent=2) + "\n")
    paths[4].write_text(report_markdown(result.report, reference=result.reference))
    return paths


def reference_data(layout: RawLayout, areas: pd.DataFrame):
    """Read the optional ``(boundaries, gazetteer)`` of the area reference."""
    ref_dir = layout.reference
    geo = ref_dir / "boundaries.geojson" if ref_dir is not None else None
    boundaries = area_ref.read_boundaries(geo) if geo is not None and geo.is_file() else None
    gaz = ref_dir / "gazetteer.csv" if ref_dir is not None else None
    gazetteer = (area_ref.read_gazetteer(gaz, areas) if gaz is not None and gaz.is_file()
                 else pd.DataFrame({"name": [], "area_code": []}))  # fmt: skip
    return boundaries, gazetteer
