"""Clerical noise in free text: how a busy A&E clerk types a place name."""

from __future__ import annotations

import re

import numpy as np

__all__ = ["UNUSABLE_DESCRIPTIONS", "ABBREVIATIONS", "noisy_descriptions"]

UNUSABLE_DESCRIPTIONS = ("", "not known", "N/K", "unknown", "pt unsure", "refused", "?")
ABBREVIATIONS = {
    "Street": "St",
    "Road": "Rd",
    "Lane": "Ln",
    "Avenue": "Ave",
    "Close": "Cl",
    "Crescent": "Cres",
    "Terrace": "Ter",
    "Drive": "Dr",
    "Gardens": "Gdns",
    "Place": "Pl",
    "Square": "Sq",
}
_ABBREV = re.compile(r"\b(" + "|".join(ABBREVIATIONS) + r")\b")


def _typo(name: str, rng: np.random.Generator) -> str:
    """One keyboard slip: swap, drop or double a letter (never the first)."""
    if len(name) < 4:
        return name
    i = int(rng.integers(1, len(name) - 1))
    kind = int(rng.integers(0, 3))
    if kind == 0:
        return name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    if kind == 1:
        return name[:i] + name[i + 1 :]
    return name[:i] + name[i] + name[i:]


def _variants(name: str, rng: np.random.Generator) -> list[str]:
    abbrev = _ABBREV.sub(lambda m: ABBREVIATIONS[m.group(1)], name)
    return [
        name,
        name.lower(),
        name.upper(),
        abbrev,
        abbrev.lower() + ".",
        name + ",",
        "nr " + name.lower(),
        _typo(name, rng),
        _typo(name.lower(), rng),
    ]


_CLEAN_P = np.array([0.40, 0.16, 0.08, 0.12, 0.05, 0.05, 0.04])
_N_TYPO = 2


def noisy_descriptions(
    names: np.ndarray,
    which: np.ndarray,
    rng: np.random.Generator,
    *,
    typo_rate: float = 0.10,
    unusable_rate: float = 0.05,
) -> np.ndarray:
    """Return one clerk-typed description per row.

    Parameters
    ----------
    names : canonical place names (unique strings).
    which : index into ``names`` for each row; -1 means no place is known.
    rng : random generator.
    typo_rate, unusable_rate : share of rows with a typo / an unusable text.
    """
    table = np.array([_variants(str(n), rng) for n in names], dtype=object).reshape(len(names), -1)
    m = len(which)
    clean = rng.choice(len(_CLEAN_P), m, p=_CLEAN_P / _CLEAN_P.sum())
    typo = len(_CLEAN_P) + rng.integers(0, _N_TYPO, m)
    variant = np.where(rng.random(m) < typo_rate, typo, clean)
    safe = np.maximum(which, 0)
    out = table[safe, variant] if len(names) else np.full(m, "", dtype=object)
    unusable = (rng.random(m) < unusable_rate) | (which < 0)
    junk = np.array(UNUSABLE_DESCRIPTIONS, dtype=object)[
        rng.integers(0, len(UNUSABLE_DESCRIPTIONS), m)
    ]
    return np.where(unusable, junk, out)
