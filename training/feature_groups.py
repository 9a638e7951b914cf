"""Feature groups: which columns make each kind of evidence, so each can be ablated.

:data:`FEATURE_GROUPS` maps a group name to the rule (a predicate on a column
name) selecting its columns. Groups may overlap (``neighbours`` holds every
``nb_*`` column, ``council_neighbours`` among them). The backtest refits the
model without each group in ``BacktestParams.ablation_groups``
(``ablation_no_<group>``) and reports what the group adds.

The lead-time groups:

- ``council_lead``: evictions and exclusions at lags of 3 weeks or more
  (``evictions_lag3`` ... ``evictions_lag8``; lag ``k`` is the count ``k - 1``
  weeks before the origin week) and their jump against the area's own
  baseline (``*_lead_change``, ``*_lead_ratio``: see
  ``training.lead_features``).
- ``council_neighbours``: the neighbours' mean of those (``nb_evictions_lag3``...).
- ``near_repeat``: violent records in the last 7 and 14 days and days since
  the last one, in the area and over its neighbours (``nr_*``, ``nb_nr_*``),
  from the day-grain linked records.
- ``night_time_economy``: late premises times summer-ness, December and
  bank-holiday weekends of the target week (``nte_*``).

Audit-only (``audit_*``) columns never belong to any group.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

__all__ = [
    "FEATURE_GROUPS",
    "LEAD_GROUPS",
    "GROUP_WORDS",
    "group_columns",
    "columns_without",
    "group_words",
]

_SENSITIVE = "audit_"
_COUNCIL = re.compile(r"^(evictions|exclusions)_(?:lag(?P<lag>\d+)|lead_change|lead_ratio)$")
_PARTNERSHIP = ("violence_", "ae_", "ambulance_", "exclusions_", "evictions_")
_SEASON = ("woy_sin", "woy_cos", "holiday")
_STATICS = ("population", "area_km2", "density", "imd_decile", "premises", "late_premises")


def _council(name: str) -> bool:
    match = _COUNCIL.match(name)
    return match is not None and (match["lag"] is None or int(match["lag"]) >= 3)


def _council_lead(name: str) -> bool:
    return _council(name)


def _council_neighbours(name: str) -> bool:
    return name.startswith("nb_") and _council(name.removeprefix("nb_"))


def _near_repeat(name: str) -> bool:
    return name.removeprefix("nb_").startswith("nr_")


def _night_time_economy(name: str) -> bool:
    return name.startswith("nte_")


def _lead(name: str) -> bool:
    return (
        _council_lead(name)
        or _council_neighbours(name)
        or _near_repeat(name)
        or (_night_time_economy(name))
    )


def _police(name: str) -> bool:
    return name.removeprefix("nb_").startswith("police_")


def _partnership(name: str) -> bool:
    return name.removeprefix("nb_").startswith(_PARTNERSHIP) and not _lead(name)


#: group name -> rule selecting its columns (a column name -> bool)
FEATURE_GROUPS: dict[str, Callable[[str], bool]] = {
    "police": _police,
    "partnership": _partnership,
    "neighbours": lambda name: name.startswith("nb_"),
    "season": lambda name: name in _SEASON,
    "statics": lambda name: name in _STATICS,
    "council_lead": _council_lead,
    "council_neighbours": _council_neighbours,
    "near_repeat": _near_repeat,
    "night_time_economy": _night_time_economy,
}
#: the groups with lead time (ablated by default)
LEAD_GROUPS = ("council_lead", "council_neighbours", "near_repeat", "night_time_economy")
GROUP_WORDS = {
    "police": "police records (violent and other crimes)",
    "partnership": "partnership records (A&E, ambulance, council) of recent weeks",
    "neighbours": "neighbouring areas",
    "season": "time of year and bank holidays",
    "statics": "area size, population, deprivation and licensed premises",
    "council_lead": "council indicators (evictions, exclusions) {lags} weeks back "
    "and their jump against the area's usual level",
    "council_neighbours": "neighbouring areas' council indicators {lags} weeks back",
    "near_repeat": "near-repeat: violent records in the last days and days since the last one "
    "(area and neighbours, day-dated records only)",
    "night_time_economy": "late-night premises in summer, December and bank-holiday weekends",
}


def group_columns(columns: Iterable[str], group: str) -> list[str]:
    """Return the columns of ``columns`` that belong to ``group``, in order.

    Examples
    --------
    >>> group_columns(["evictions_lag2", "evictions_lag3", "nb_evictions_lag3"], "council_lead")
    ['evictions_lag3']
    """
    rule = FEATURE_GROUPS[group]
    return [c for c in columns if not str(c).startswith(_SENSITIVE) and rule(str(c))]


def columns_without(columns: Iterable[str], groups: Iterable[str]) -> list[str]:
    """Return ``columns`` minus those of every group in ``groups``."""
    columns = list(columns)
    drop: set[str] = set()
    for group in groups:
        drop.update(group_columns(columns, group))
    return [c for c in columns if c not in drop]


def group_words(group: str, columns: Iterable[str] = ()) -> str:
    """Plain words for a group; council groups name their lags as found in ``columns``.

    Examples
    --------
    >>> group_words("council_lead", ["evictions_lag3", "evictions_lag8"])
    "council indicators (evictions, exclusions) 3-8 weeks back and their jump against the area's usual level"
    """  # noqa: E501
    lags = sorted(
        {
            int(m["lag"])
            for c in columns
            if (m := _COUNCIL.match(str(c).removeprefix("nb_")))
            and m["lag"] is not None
            and int(m["lag"]) >= 3
        }  # fmt: skip
    )
    span = f"{lags[0]}-{lags[-1]}" if len(lags) > 1 else (str(lags[0]) if lags else "3+")
    return GROUP_WORDS.get(group, group).format(lags=span)
