"""Request schema of the forecast service, and the messages it answers with.

The pydantic model checks what can be checked without the snapshot (week
syntax, horizon and ``top_k`` bounds, ``areas`` xor ``top_k``); BentoML turns
its errors into HTTP 400. What needs the snapshot (unknown areas, a week the
snapshot does not cover) raises :class:`RequestError` from ``serving.query``.
"""

from __future__ import annotations

import datetime as dt
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from training.errors import HarmcastError

__all__ = [
    "ForecastRequest",
    "RequestError",
    "parse_week",
    "MAX_HORIZON",
    "MSG_WEEK_SYNTAX",
    "MSG_WEEK_NOT_MONDAY",
    "MSG_AREAS_AND_TOP_K",
    "MSG_UNKNOWN_AREAS",
    "MSG_WEEK_OUTSIDE",
    "MSG_WEEK_HORIZON",
    "MSG_HORIZON_OUTSIDE",
]

MAX_HORIZON = 4

MSG_WEEK_SYNTAX = "week must be an ISO date of a Monday (2025-03-31) or an ISO week (2025-W14)"
MSG_WEEK_NOT_MONDAY = "week {week} is a {day}, not a Monday; weeks are identified by their Monday"
MSG_AREAS_AND_TOP_K = "give either areas or top_k, not both"
MSG_UNKNOWN_AREAS = "unknown area codes: {codes}"
MSG_WEEK_OUTSIDE = (
    "week {week} is outside the forecast snapshot: it covers {first} to {last} "
    "(origin week {origin})"
)
MSG_WEEK_HORIZON = "week {week} is horizon {expected} from origin week {origin}, not {horizon}"
MSG_HORIZON_OUTSIDE = "horizon {horizon} is not in the snapshot (it holds {horizons})"

_ISO_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class RequestError(HarmcastError, ValueError):
    """A well-formed request the snapshot cannot answer (answered with HTTP 400)."""


def parse_week(week: str) -> dt.date:
    """Return the Monday of ``week`` (an ISO Monday date or an ISO week).

    Examples
    --------
    >>> parse_week("2025-W14")
    datetime.date(2025, 3, 31)
    >>> parse_week("2025-03-31")
    datetime.date(2025, 3, 31)
    """
    match = _ISO_WEEK.match(week)
    try:
        if match:
            return dt.date.fromisocalendar(int(match[1]), int(match[2]), 1)
        if _ISO_DATE.match(week):
            day = dt.date.fromisoformat(week)
        else:
            raise ValueError(MSG_WEEK_SYNTAX)
    except ValueError as exc:
        raise ValueError(MSG_WEEK_SYNTAX) from exc
    if day.weekday() != 0:
        raise ValueError(MSG_WEEK_NOT_MONDAY.format(week=week, day=day.strftime("%A")))
    return day


class ForecastRequest(BaseModel):
    """Which forecasts to return.

    Neither ``areas`` nor ``top_k`` returns every area. ``week`` is the target
    week; it defaults to the week after the latest data (horizon 1).
    """

    # strict: "explain": "yes" or "top_k": true is an error, not a guess
    model_config = ConfigDict(extra="forbid", strict=True)

    week: str | None = Field(
        None,
        description="Target week: ISO date of a Monday or ISO week; default: the next week.",
        examples=["2025-W14", "2025-03-31"],
        max_length=10,
    )
    areas: list[str] | None = Field(
        None,
        description="Area codes to return (not with top_k).",
        min_length=1,
        max_length=50_000,
    )
    top_k: int | None = Field(
        None, description="Return the k highest-risk areas (not with areas).", ge=1, le=100_000
    )
    horizon: int | None = Field(
        None,
        description="Weeks ahead (1..4); defaults to 1, or to the horizon of week when given.",
        ge=1,
        le=MAX_HORIZON,
    )
    explain: bool = Field(False, description="Add the top drivers of each forecast.")

    @field_validator("week")
    @classmethod
    def _week_is_iso(cls, week: str | None) -> str | None:
        if week is not None:
            parse_week(week)
        return week

    @model_validator(mode="after")
    def _areas_xor_top_k(self) -> ForecastRequest:
        if self.areas is not None and self.top_k is not None:
            raise ValueError(MSG_AREAS_AND_TOP_K)
        return self
