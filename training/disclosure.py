"""Small-number suppression for anything published."""

from __future__ import annotations

__all__ = ["SUPPRESSED", "suppress_small"]

SUPPRESSED = "<5"


def suppress_small(value: int | float) -> str | int:
    """Return ``value`` as an int, or ``"<5"`` when it is a count from 1 to 4.

    Zero is published as 0: it reveals no individual.

    Examples
    --------
    >>> suppress_small(3), suppress_small(0), suppress_small(12)
    ('<5', 0, 12)
    """
    count = int(round(float(value)))
    return SUPPRESSED if 1 <= count <= 4 else count
