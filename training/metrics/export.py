"""Flat metrics files for ``dvc metrics show`` and ``dvc metrics diff``.

The backtest's ``results.json`` and the audit's ``gate_report.json`` are nested
(tables, margins, checks); DVC compares flat ``name: number`` files best, so
this module extracts the headline numbers into ``data/08_reporting/``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal

from training.config import Params
from training.errors import SchemaError

__all__ = [
    "STEPS",
    "METRICS_FILES",
    "MSG_NOT_FOUND",
    "backtest_metrics",
    "audit_metrics",
    "export_metrics",
]

STEPS = ("backtest", "audit")
METRICS_FILES = {
    "backtest": "backtest_metrics.json",
    "audit": "audit_metrics.json",
}
MSG_NOT_FOUND = "not found: run `harmcast {step}` first"


def _number(value: object) -> float | int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float) and math.isfinite(float(value)):
        return value
    return None


def backtest_metrics(results: dict) -> dict[str, float | int]:
    """Headline numbers of a backtest ``results.json``, flat and finite.

    Parameters
    ----------
    results : the parsed ``results.json`` (``summary.headline``,
        ``summary.acceptance``, ``summary.beats_every_baseline``).

    Returns
    -------
    dict
        ``name -> number``; booleans become 0/1, non-finite values are dropped.

    Examples
    --------
    >>> backtest_metrics({"summary": {"headline": {"h1.model.pai": 2.5, "x": None}}})
    {'h1.model.pai': 2.5}
    """
    summary = results.get("summary", {})
    out: dict[str, float | int] = {}
    for key, value in summary.get("headline", {}).items():
        if (number := _number(value)) is not None:
            out[key] = number
    for section in ("beats_every_baseline", "acceptance"):
        entries = summary.get(section, {})
        if not isinstance(entries, dict):
            continue
        for key, value in entries.items():
            if (number := _number(value)) is not None:
                out[f"{section}.{key}"] = number
    return out


def audit_metrics(report: dict) -> dict[str, float | int]:
    """Return the gate's verdict and each check's value (``passed`` as 0/1), flat.

    Examples
    --------
    >>> audit_metrics({"passed": False, "checks": [{"name": "a.b", "value": 1.1,
    ...                "passed": True, "gated": True}]})
    {'gate.passed': 0, 'gate.failed_gated': 0, 'a.b': 1.1, 'a.b.passed': 1}
    """
    checks = report.get("checks", [])
    failed = sum(1 for c in checks if c.get("gated") and not c.get("passed"))
    out: dict[str, float | int] = {
        "gate.passed": int(bool(report.get("passed"))),
        "gate.failed_gated": failed,
    }
    for check in checks:
        name = check.get("name", "")
        if (number := _number(check.get("value"))) is not None:
            out[name] = number
        out[f"{name}.passed"] = int(bool(check.get("passed")))
    return out


def export_metrics(params: Params, *, step: Literal["backtest", "audit"] = "backtest") -> Path:
    """Write ``data/08_reporting/<step>_metrics.json`` from the step's report.

    Raises
    ------
    SchemaError
        When the step's report file is missing or is not JSON.
    """
    if step == "backtest":
        source = params.paths.resolve("backtest") / "results.json"
        extract = backtest_metrics
    else:
        source = params.paths.resolve("audit") / "gate_report.json"
        extract = audit_metrics
    if not source.is_file():
        raise SchemaError(source, MSG_NOT_FOUND.format(step=step))
    try:
        parsed = json.loads(source.read_text())
    except json.JSONDecodeError as exc:
        raise SchemaError(source, f"not valid JSON: {exc}") from exc
    out_dir = params.paths.resolve("reporting")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / METRICS_FILES[step]
    target.write_text(json.dumps(extract(parsed), indent=2, sort_keys=True) + "\n")
    return target
