"""Receptionists' ways of writing a place, stripped before gazetteer matching.

``LOCATION_RULES`` are the prefixes and connectors typed into A&E and similar
free text ("outside", "o/s", "near", "opp", "junction of X and Y" -> X...),
``VENUE_RULES`` the venue forms ("the X", "X pub"), applied to record text
and gazetteer names alike. Each text keeps the names of the rules that
changed it, so the linkage report can count what each rule rescued.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["LOCATION_RULES", "VENUE_RULES", "strip_location_forms"]

#: Prefixes and connectors, tried in order on normalised text (the first that
#: matches is applied); each rewrites the text to the place it points at.
#: Rule names are reported as ``location_<name>``.
LOCATION_RULES: tuple[tuple[str, str, str], ...] = (
    ("junction", r"^(?:junction of|junction|jct of|jct|jnc of|j o)\s+(.+?)\s+(?:and|with|x)\s+.+$",
     r"\1"),
    ("corner", r"^(?:corner of|cnr of|cnr|corner)\s+(.+?)\s+(?:and|with|x)\s+.+$", r"\1"),
    ("outside", r"^(?:outside of|outside|o s|in front of)\s+", ""),
    ("near", r"^(?:near to|near|nr)\s+", ""),
    ("opposite", r"^(?:opposite of|opposite|opp)\s+", ""),
    ("behind", r"^(?:behind|back of|rear of)\s+", ""),
    ("by", r"^by\s+", ""),
    ("in", r"^(?:inside|in)\s+", ""),
    ("at", r"^at\s+", ""),
)  # fmt: skip
#: Venue forms, applied after the prefixes to record text and gazetteer names alike.
VENUE_RULES: tuple[tuple[str, str, str], ...] = (
    ("venue_the", r"^the\s+(?=\S)", ""),
    ("venue_pub", r"^(.*\S)\s+(?:pub|public house|bar|nightclub|night club|club)$", r"\1"),
)


def _apply_rules(
    text: pd.Series, rules: tuple[tuple[str, str, str], ...], *, first_only: bool
) -> tuple[pd.Series, pd.Series]:
    fired = pd.Series("", index=text.index, dtype=object)
    # one pass to find the few texts any rule touches; the rules then run on those only
    anything = "|".join(f"(?:{pattern})" for _, pattern, _ in rules)
    touched = text.str.match(anything)
    if not touched.any():
        return text, fired
    stripped, rules_fired = _apply_each(text[touched].copy(), rules, first_only=first_only)
    text.loc[touched] = stripped
    fired.loc[touched] = rules_fired
    return text, fired


def _apply_each(
    text: pd.Series, rules: tuple[tuple[str, str, str], ...], *, first_only: bool
) -> tuple[pd.Series, pd.Series]:
    fired = pd.Series("", index=text.index, dtype=object)
    for name, pattern, repl in rules:
        todo = fired == "" if first_only else pd.Series(True, index=text.index)
        hit = todo & text.str.match(pattern)
        if not hit.any():
            continue
        changed = text[hit].str.replace(pattern, repl, regex=True).str.strip()
        keep = changed != ""
        idx = changed.index[keep]
        text.loc[idx] = changed[keep]
        rule = f"location_{name}"
        fired.loc[idx] = fired.loc[idx].where(fired.loc[idx] == "", fired.loc[idx] + ";") + rule
    return text, fired


def strip_location_forms(
    normalised: pd.Series, *, prefixes: bool = True, venues: bool = True
) -> tuple[pd.Series, pd.Series]:
    """Strip receptionists' prefixes and venue forms from normalised text.

    Parameters
    ----------
    normalised : text from :func:`normalise_location`.
    prefixes : apply ``LOCATION_RULES`` (record text).
    venues : apply ``VENUE_RULES`` after them.

    Returns
    -------
    tuple of Series
        The stripped text and, per value, the rules that changed it
        (``location_<rule>``, ``;``-separated; ``""`` for none).

    Examples
    --------
    >>> import pandas as pd
    >>> from training.link.text import normalise_location
    >>> text = normalise_location(pd.Series(["o/s Carrton Way", "J/O Mill Ln & High St"]))
    >>> stripped, rules = strip_location_forms(text)
    >>> stripped.tolist(), rules.tolist()
    (['carrton way', 'mill lane'], ['location_outside', 'location_junction'])
    """
    text = normalised.astype(str).copy()
    fired = pd.Series("", index=text.index, dtype=object)
    if prefixes:
        text, fired = _apply_rules(text, LOCATION_RULES, first_only=True)
    if not venues:
        return text, fired
    text, venue = _apply_rules(text, VENUE_RULES, first_only=False)
    both = (fired != "") & (venue != "")
    fired = fired.where(~both, fired + ";" + venue).where(fired != "", venue)
    return text, fired
