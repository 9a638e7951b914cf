"""Gazetteer matching of free-text locations (street or venue names).

Text is normalised (case, punctuation, whitespace, "on or near", common
abbreviations), then stripped of the prefixes and connectors receptionists
type (``LOCATION_RULES``: "outside", "o/s", "near", "opp", "junction of X and
Y" -> X, ...) and of the venue forms ("the X", "X pub"; gazetteer names get
the venue forms too), matched exactly first, then fuzzily with rapidfuzz:
within the areas the record's A&E site serves, then city-wide. Each text
keeps the name of the rule that changed it, so the linkage report can count
the records each rule rescued.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from training.link.rules import LOCATION_RULES, VENUE_RULES, strip_location_forms

__all__ = [
    "ABBREVIATIONS", "UNUSABLE", "LOCATION_RULES", "VENUE_RULES", "normalise_location",
    "strip_location_forms", "catchments", "location_table",
    "lookup_locations", "match_locations",
]  # fmt: skip

ABBREVIATIONS = {
    "st": "street",
    "rd": "road",
    "ave": "avenue",
    "av": "avenue",
    "ln": "lane",
    "dr": "drive",
    "sq": "square",
    "pl": "place",
    "cres": "crescent",
    "ct": "court",
    "cl": "close",
    "gdns": "gardens",
    "gr": "grove",
    "pk": "park",
    "tce": "terrace",
    "hwy": "highway",
    "bldgs": "buildings",
}
UNUSABLE = frozenset(
    {"", "no location", "unknown", "not known", "nk", "n k", "na", "n a", "none", "nil",
     "not stated", "not given", "refused", "declined", "various", "other", "xx", "xxx"}
)  # fmt: skip
_CHUNK = 2000


def normalise_location(text: pd.Series) -> pd.Series:
    """Return ``text`` normalised for matching (lower case, words expanded)."""
    out = (
        text.astype(str)
        .str.lower()
        .str.replace(r"^\s*on or near\s+", "", regex=True)
        .str.replace(r"['\u2019`]", "", regex=True)
        .str.replace(r"(?<=\w\w)\s*/\s*(?=\w\w)", " and ", regex=True)
        .str.replace("&", " and ", regex=False)
        .str.replace(r"[^a-z0-9]+", " ", regex=True)
        .str.strip()
    )
    pattern = r"\b(" + "|".join(sorted(ABBREVIATIONS, key=len, reverse=True)) + r")\b"
    return out.str.replace(pattern, lambda m: ABBREVIATIONS[m.group(1)], regex=True)


def _lookup(
    gazetteer: pd.DataFrame, plain: pd.Series | None = None, *, venues: bool = False
) -> pd.Series:
    # ``plain``: the names through normalise_location already (computed once per run);
    # ``venues``: the names without their venue forms ("the X", "X pub")
    plain = normalise_location(gazetteer["name"]) if plain is None else plain
    names = strip_location_forms(plain, prefixes=False)[0] if venues else plain
    return (
        pd.DataFrame({"name": names, "area_code": gazetteer["area_code"].astype(str)})
        .loc[lambda f: f["name"] != ""]
        .groupby("name")["area_code"]
        .agg(lambda s: tuple(sorted(set(s))))
    )


def _fuzzy(queries: list[str], lookup: pd.Series, min_score: float) -> dict[str, tuple]:
    names = list(lookup.index)
    found: dict[str, tuple] = {}
    for start in range(0, len(queries), _CHUNK):
        chunk = queries[start : start + _CHUNK]
        scores = process.cdist(
            chunk, names, scorer=fuzz.ratio, score_cutoff=min_score, dtype=np.float32
        )
        best = scores.max(axis=1)
        for i, query in enumerate(chunk):
            if best[i] <= 0:
                continue
            tied = np.flatnonzero(scores[i] == best[i])
            found[query] = tuple(sorted({a for j in tied for a in lookup.iat[j]}))
    return found


def catchments(keys: pd.DataFrame, exact: dict[str, tuple]) -> dict[str, frozenset]:
    """Return the areas each site serves: where its exactly matched texts point.

    ``keys`` holds unique ``(site, text)`` pairs (normalised text); a text
    counts when its exact gazetteer match names one area. Records without a
    site (``""``) have no catchment.
    """
    served: dict[str, set] = {}
    for site, text in keys.itertuples(index=False):
        areas = exact.get(text)
        if site and areas is not None and len(areas) == 1:
            served.setdefault(site, set()).add(areas[0])
    return {site: frozenset(areas) for site, areas in served.items()}


def _within(by_area: pd.Series, areas: frozenset) -> pd.Series:
    """Return the gazetteer names in ``areas``, each with only its areas among them.

    ``by_area`` is the lookup exploded to one ``name -> area`` row per area.
    """
    kept = by_area.loc[by_area.isin(areas)]
    return kept.groupby(level=0, sort=True).agg(lambda codes: tuple(sorted(codes)))


def _fuzzy_by_site(
    keys: pd.DataFrame, lookup: pd.Series, served: dict[str, frozenset], min_score: float
) -> dict[tuple[str, str], tuple]:
    """Fuzzy-match each ``(site, text)`` in its site's catchment, then city-wide.

    Searching a site's catchment first keeps the work linear in the number of
    areas (each site serves a few hundred) and settles names that recur across
    a city but not within one hospital's catchment. What finds nothing there is
    searched in the whole gazetteer.
    """
    by_area = lookup.explode()
    found: dict[tuple[str, str], tuple] = {}
    for site, group in keys.groupby("site", sort=True):
        if site not in served:
            continue
        local = _within(by_area, served[site])
        hits = _fuzzy(group["text"].tolist(), local, min_score) if len(local) else {}
        found.update({(site, text): areas for text, areas in hits.items()})
    rest = keys.loc[[k not in found for k in zip(keys["site"], keys["text"], strict=True)]]
    wide = _fuzzy(rest["text"].unique().tolist(), lookup, min_score) if len(rest) else {}
    for site, text in rest.itertuples(index=False):
        if text in wide:
            found[(site, text)] = wide[text]
    return found


def _text_column(text: pd.Series) -> np.ndarray:
    # a missing text is an empty one (``no_location``)
    return text.fillna("").astype(str).to_numpy(dtype=object)


def _site_column(site: pd.Series | None, text: pd.Series) -> np.ndarray:
    if site is None:
        return np.full(len(text), "", dtype=object)
    return site.fillna("").astype(str).to_numpy(dtype=object)


def _resolve(
    keys: pd.DataFrame,
    gazetteer: pd.DataFrame,
    min_score: float,
    plain: pd.Series | None = None,
    *,
    venues: bool = False,
) -> pd.DataFrame:
    """Resolve unique ``(site, normalised text)`` keys; same index as ``keys``."""
    lookup = _lookup(gazetteer, plain, venues=venues) if len(gazetteer) else pd.Series(dtype=object)
    usable = keys["text"].map(lambda q: q not in UNUSABLE and len(q) >= 3)
    exact = {q: lookup[q] for q in keys.loc[usable, "text"].unique() if q in lookup.index}
    fuzzy_keys = keys.loc[usable & ~keys["text"].isin(exact.keys())]
    fuzzy = (
        _fuzzy_by_site(fuzzy_keys, lookup, catchments(keys, exact), min_score)
        if len(lookup) and len(fuzzy_keys)
        else {}
    )
    rows = []
    for (s, q), ok in zip(keys.itertuples(index=False), usable, strict=True):
        areas, method = exact.get(q), "gazetteer_exact"
        if areas is None:
            areas, method = fuzzy.get((s, q)), "gazetteer_fuzzy"
        if not ok:
            rows.append(("", "", "no_location"))
        elif areas is None:
            rows.append(("", "", "unmatched_location"))
        elif len(areas) > 1:
            rows.append(("", "", "ambiguous_location"))
        else:
            rows.append((areas[0], method, ""))
    return pd.DataFrame(rows, columns=["area_code", "method", "reason"], index=keys.index)


def location_table(
    text: pd.Series,
    gazetteer: pd.DataFrame,
    *,
    min_score: float,
    site: pd.Series | None = None,
) -> pd.DataFrame:
    """Resolve each distinct ``(site, text)`` once: the table :func:`lookup_locations` reads.

    Parameters are those of :func:`match_locations`. The result is indexed by
    ``(site, text)`` (the text as given) with ``area_code``, ``method``,
    ``reason`` and ``rule`` (the location rules without which the text would
    not have linked). Built from all the records of a run, it gives every
    record the answer :func:`match_locations` would (catchments need all of a
    site's records), so one table can serve many partitions.
    """
    raw = pd.DataFrame({"site": _site_column(site, text), "text": _text_column(text)})
    raw = raw.drop_duplicates(ignore_index=True)
    texts = pd.Series(raw["text"].unique())
    norm, rule = strip_location_forms(normalise_location(texts), venues=False)
    venue, venue_rule = strip_location_forms(norm, prefixes=False)
    by_text = dict(zip(texts, zip(norm, rule, venue, venue_rule, strict=True), strict=True))
    raw["norm"] = [by_text[t][0] for t in raw["text"]]
    keys = (
        raw[["site", "norm"]].drop_duplicates(ignore_index=True).set_axis(["site", "text"], axis=1)
    )
    plain = normalise_location(gazetteer["name"]) if len(gazetteer) else None
    resolved = _resolve(keys, gazetteer, min_score, plain)
    resolved.index = pd.MultiIndex.from_frame(keys)
    table = resolved.reindex(pd.MultiIndex.from_arrays([raw["site"], raw["norm"]]))
    table.index = pd.MultiIndex.from_frame(raw[["site", "text"]])
    table["rule"] = [by_text[t][1] for t in raw["text"]]
    table = _venue_fallback(table, raw, by_text, gazetteer, min_score, plain)
    table["rule"] = table["rule"].where(
        (table["reason"] == "") & _needed_rules(table, gazetteer, min_score, plain), ""
    )
    return table.astype(str)


def _venue_fallback(table, raw, by_text, gazetteer, min_score, plain) -> pd.DataFrame:
    """Try the venue forms ("the X", "X pub") only where the text found no name as typed.

    Names are matched as typed first, so "The Green" still finds the venue
    "The Green" rather than the street "Green"; an unmatched "Red Lion pub"
    then finds "The Red Lion".
    """
    venue = np.array([by_text[t][2] for t in raw["text"]], dtype=object)
    tried = (table["reason"].to_numpy() == "unmatched_location") & (venue != raw["norm"].to_numpy())
    if not tried.any() or not len(gazetteer):
        return table
    keys = pd.DataFrame({"site": raw["site"].to_numpy()[tried], "text": venue[tried]})
    keys = keys.drop_duplicates(ignore_index=True)
    found = _resolve(keys, gazetteer, min_score, plain, venues=True)
    found.index = pd.MultiIndex.from_frame(keys)
    again = found.reindex(pd.MultiIndex.from_arrays([raw["site"].to_numpy()[tried], venue[tried]]))
    hit = (again["reason"] == "").to_numpy()
    rows = np.flatnonzero(tried)[hit]
    table = table.copy()
    for column in ("area_code", "method", "reason"):
        table.iloc[rows, table.columns.get_loc(column)] = again[column].to_numpy()[hit]
    extra = np.array([by_text[t][3] for t in raw["text"]], dtype=object)[rows]
    before = table["rule"].to_numpy()[rows]
    table.iloc[rows, table.columns.get_loc("rule")] = [
        f"{b};{e}" if b else e for b, e in zip(before, extra, strict=True)
    ]
    return table


def _needed_rules(
    table: pd.DataFrame, gazetteer: pd.DataFrame, min_score: float, plain: pd.Series | None
) -> np.ndarray:
    """Return where a linked text would not have linked without the location rules.

    Without the rules means the text and the gazetteer normalised as before
    the rules existed, matched exactly, or fuzzily city-wide.
    """
    texts = table.index.get_level_values("text")
    fired = (table["rule"] != "").to_numpy() & (table["reason"] == "").to_numpy()
    needed = np.zeros(len(table), dtype=bool)
    if not fired.any() or not len(gazetteer):
        return needed
    names = normalise_location(gazetteer["name"]) if plain is None else plain
    plain = normalise_location(pd.Series(texts[fired]))
    lookup = pd.Series(gazetteer["area_code"].astype(str).to_numpy(), index=names.to_numpy())
    lookup = lookup.loc[lookup.index != ""].groupby(level=0).agg(lambda s: tuple(sorted(set(s))))
    unique = pd.Series(plain.unique())
    exact = unique.isin(lookup.index)
    fuzzy = _fuzzy(unique[~exact].tolist(), lookup, min_score) if (~exact).any() else {}
    would = set(unique[exact]) | set(fuzzy)
    needed[np.flatnonzero(fired)] = ~plain.isin(would).to_numpy()
    return needed


def lookup_locations(
    table: pd.DataFrame, text: pd.Series, site: pd.Series | None = None
) -> pd.DataFrame:
    """Read each record's answer from a :func:`location_table`; indexed like ``text``.

    Raises
    ------
    KeyError
        When a ``(site, text)`` is not in ``table`` (it was built from other records).
    """
    wanted = pd.MultiIndex.from_arrays([_site_column(site, text), _text_column(text)])
    missing = ~wanted.isin(table.index)
    if missing.any():
        raise KeyError(
            f"{int(missing.sum())} locations are not in the table, e.g. {wanted[missing][0]}"
        )
    out = table.reindex(wanted)
    out.index = text.index
    return out


def match_locations(
    text: pd.Series,
    gazetteer: pd.DataFrame,
    *,
    min_score: float,
    site: pd.Series | None = None,
) -> pd.DataFrame:
    """Match free-text locations to areas.

    Parameters
    ----------
    text : the free text, one per record.
    gazetteer : ``name``, ``area_code`` (``kind`` is not used for matching).
    min_score : the least rapidfuzz ``ratio`` (0-100) a fuzzy match needs.
    site : the A&E site of each record (``""`` for none). A fuzzy match is
        searched first among the areas the site serves (see :func:`catchments`),
        then city-wide; exact matches are always city-wide.

    Returns
    -------
    DataFrame
        Indexed like ``text``: ``area_code`` (empty when unmatched),
        ``method`` (``gazetteer_exact`` / ``gazetteer_fuzzy`` or empty) and
        ``reason`` (empty when matched, else ``no_location``,
        ``ambiguous_location`` or ``unmatched_location``) and ``rule`` (the
        location rules that changed the text, ``;``-separated, or empty).
    """
    table = location_table(text, gazetteer, min_score=min_score, site=site)
    return lookup_locations(table, text, site)
