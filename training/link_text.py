"""Gazetteer matching of free-text locations (street or venue names).

Text is normalised (case, punctuation, whitespace, "on or near", common
abbreviations), matched exactly first, then fuzzily with rapidfuzz.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

__all__ = ["ABBREVIATIONS", "UNUSABLE", "normalise_location", "match_locations"]

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
        .str.replace("&", " and ", regex=False)
        .str.replace(r"[^a-z0-9]+", " ", regex=True)
        .str.strip()
    )
    pattern = r"\b(" + "|".join(sorted(ABBREVIATIONS, key=len, reverse=True)) + r")\b"
    return out.str.replace(pattern, lambda m: ABBREVIATIONS[m.group(1)], regex=True)


def _lookup(gazetteer: pd.DataFrame) -> pd.Series:
    names = normalise_location(gazetteer["name"])
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


def match_locations(text: pd.Series, gazetteer: pd.DataFrame, *, min_score: float) -> pd.DataFrame:
    """Match free-text locations to areas.

    Parameters
    ----------
    text : the free text, one per record.
    gazetteer : ``name``, ``area_code`` (``kind`` is not used for matching).
    min_score : the least rapidfuzz ``ratio`` (0-100) a fuzzy match needs.

    Returns
    -------
    DataFrame
        Indexed like ``text``: ``area_code`` (empty when unmatched),
        ``method`` (``gazetteer_exact`` / ``gazetteer_fuzzy`` or empty) and
        ``reason`` (empty when matched, else ``no_location``,
        ``ambiguous_location`` or ``unmatched_location``).
    """
    norm = normalise_location(text)
    lookup = _lookup(gazetteer) if len(gazetteer) else pd.Series(dtype=object)
    unique = pd.Index(norm.unique())
    usable = [q for q in unique if q not in UNUSABLE and len(q) >= 3]
    exact = {q: lookup[q] for q in usable if q in lookup.index}
    rest = [q for q in usable if q not in exact]
    fuzzy = _fuzzy(rest, lookup, min_score) if len(lookup) and rest else {}
    rows = {}
    for q in unique:
        areas, method = exact.get(q), "gazetteer_exact"
        if areas is None:
            areas, method = fuzzy.get(q), "gazetteer_fuzzy"
        if q not in usable:
            rows[q] = ("", "", "no_location")
        elif areas is None:
            rows[q] = ("", "", "unmatched_location")
        elif len(areas) > 1:
            rows[q] = ("", "", "ambiguous_location")
        else:
            rows[q] = (areas[0], method, "")
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["area_code", "method", "reason"])
    out = table.reindex(norm.to_numpy())
    out.index = text.index
    return out.astype(str)
