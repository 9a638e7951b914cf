"""The audit step (fairness bootstrap, SHAP) before and after a change, in one run.

Runs ``harmcast audit`` on one prepared project root (the default synthetic
city after ``synth``, ``ingest``, ``panel``, ``features``, ``backtest`` and
``train``) alternately with two source trees: ``--before`` (a ``git worktree``
of the baseline commit) and this tree. Each run's wall time is measured, and
the two gate reports are compared check by check: the same verdicts, and
intervals that differ by no more than Monte Carlo error (reported as the
largest difference of an interval bound relative to the interval's width).

    git worktree add /tmp/audit_before 4e7dc4b
    python benchmarks/bench_audit_speed.py --root /tmp/city --before /tmp/audit_before

Writes ``benchmarks/results/audit_speed.json`` and ``audit_speed.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
HERE = Path(__file__).resolve().parent.parent
CLI = "from harmcast.cli import app; app()"


def run_audit(tree: Path, root: Path) -> dict:
    """Run ``harmcast audit`` from ``tree`` on ``root``; return its time and report."""
    env = {**os.environ, "PYTHONPATH": str(tree), "TERM": "dumb"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CLI, "audit", "--root", str(root)],
        cwd=tree, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    report_file = root / "data" / "07_audit" / "gate_report.json"
    if not report_file.is_file():
        raise SystemExit(f"{tree}: audit wrote no report\n{done.stdout}\n{done.stderr}")
    report = json.loads(report_file.read_text())
    return {"seconds": round(seconds, 1), "exit_code": done.returncode, "report": report}


def compare(before: dict, after: dict) -> dict:
    """Verdicts and interval differences of the checks both reports hold."""
    old = {c["name"]: c for c in before["checks"]}
    new = {c["name"]: c for c in after["checks"]}
    common = sorted(old.keys() & new.keys())
    verdicts = [n for n in common if old[n]["passed"] != new[n]["passed"]]
    worst, worst_name = 0.0, ""
    for name in common:
        a, b = old[name], new[name]
        if None in (a.get("ci_low"), a.get("ci_high"), b.get("ci_low"), b.get("ci_high")):
            continue
        width = max(a["ci_high"] - a["ci_low"], 1e-12)
        gap = max(abs(a["ci_low"] - b["ci_low"]), abs(a["ci_high"] - b["ci_high"])) / width
        if gap > worst:
            worst, worst_name = gap, name
    return {
        "checks_compared": len(common),
        "only_before": sorted(old.keys() - new.keys()),
        "only_after": sorted(new.keys() - old.keys()),
        "verdicts_differ": verdicts,
        "passed": [before["passed"], after["passed"]],
        "max_interval_shift_over_width": round(worst, 4),
        "max_interval_shift_check": worst_name,
    }


def write(payload: dict) -> None:
    """Write ``audit_speed.json`` and the Markdown summary."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "audit_speed.json").write_text(json.dumps(payload, indent=2))
    times = payload["times"]
    before = [t["seconds"] for t in times if t["tree"] == "before"]
    after = [t["seconds"] for t in times if t["tree"] == "after"]
    c = payload["comparison"]
    lines = [
        "# Audit step: before and after, same run",
        "",
        f"`harmcast audit` on the `{payload['city']}` synthetic city (root prepared with "
        "synth, ingest, panel, features, backtest, train), run alternately from a worktree "
        f"of {payload['before_commit']} (before) and this tree (after). Written by "
        "benchmarks/bench_audit_speed.py.",
        "",
        "| tree | runs (s) | best (s) |",
        "|---|---|---|",
        f"| before | {', '.join(map(str, before))} | {min(before)} |",
        f"| after | {', '.join(map(str, after))} | {min(after)} |",
        "",
        f"Speed-up (best of each): {min(before) / min(after):.2f}x.",
        "",
        f"Checks compared: {c['checks_compared']}; verdicts that differ: "
        f"{c['verdicts_differ'] or 'none'}; gate passed before/after: {c['passed']}.",
        f"Largest shift of an interval bound, relative to the interval's width: "
        f"{c['max_interval_shift_over_width']} ({c['max_interval_shift_check'] or '-'}).",
        f"Checks only after (new in this tree): {len(c['only_after'])}; only before: "
        f"{len(c['only_before'])}.",
        "",
        f"Machine: {payload['machine']}; load average at start {payload['load_at_start']}.",
    ]
    (RESULTS / "audit_speed.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    """Alternate the two trees ``--repeats`` times, compare, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--city", default="default")
    args = parser.parse_args()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=args.before, capture_output=True, text=True
    ).stdout.strip()
    payload = {
        "city": args.city,
        "before_commit": commit,
        "machine": f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_at_start": [round(x, 1) for x in os.getloadavg()],
        "times": [],
    }
    reports = {}
    for _ in range(args.repeats):
        for name, tree in (("before", args.before), ("after", HERE)):
            result = run_audit(tree.resolve(), args.root.resolve())
            payload["times"].append({"tree": name, "seconds": result["seconds"]})
            reports[name] = result["report"]
            print(name, result["seconds"], "s", flush=True)
    payload["comparison"] = compare(reports["before"], reports["after"])
    write(payload)


if __name__ == "__main__":
    main()
