"""The backtest's time before and after a change, side by side in the same run.

Two checkouts of the project (``--before``: e.g. a ``git worktree`` of an
earlier commit with its own ``uv sync --frozen``; ``--after``: this one) run
the same backtest on the same feature layer, alternating (before, after,
before, after, ...) so that the load of a shared machine falls on both alike.
Each run is its own process with its checkout's interpreter; it reads the
layers, then times ``training.backtest.run_backtest`` alone (and its two parts:
the refits and the baselines), and writes the table and margins. The report
gives the median seconds and checks that every margin of the after run lies
within the before run's bootstrap interval and each table figure moved less
than that metric's interval half-width.

Usage::

    git worktree add /tmp/base <commit> && (cd /tmp/base && uv sync --frozen)
    uv run python benchmarks/bench_backtest.py --before /tmp/base --root CITY --repeats 2

``CITY`` holds ``params.yaml`` and the data layers up to ``data/04_features``
(``harmcast synth``, ``ingest``, ``panel``, ``features``). Writes
``benchmarks/results/backtest_<name>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

RUNNER = r"""
import json, sys, time
from pathlib import Path
import pandas as pd
try:  # the backtest became a package (training/backtest/run.py)
    import training.backtest.run as bt
except ImportError:
    import training.backtest as bt
run_backtest = bt.run_backtest
from training.config import load_params
from training.panel import read_panel_layer

root, out = Path(sys.argv[1]), Path(sys.argv[2])
params = load_params(root / "params.yaml", root=root)
frame = pd.read_parquet(params.paths.resolve("features") / "features.parquet")
panel, areas, adjacency = read_panel_layer(params.paths.resolve("panel"))
oracle_path = params.paths.resolve("raw") / "oracle" / "expected_counts.parquet"
oracle = pd.read_parquet(oracle_path) if oracle_path.is_file() else None
parts = {}

def timed(name, fn):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            parts[name] = parts.get(name, 0.0) + time.perf_counter() - start
    return wrapper

bt.fit_folds = timed("refits", bt.fit_folds)
bt.predict_baselines = timed("baselines", bt.predict_baselines)
start = time.perf_counter()
result = run_backtest(frame, panel, areas, adjacency, oracle, params)
seconds = time.perf_counter() - start
out.write_text(json.dumps({
    "seconds": seconds,
    "parts": parts,
    "rows": len(frame),
    "table": json.loads(result.table.to_json(orient="records")),
    "margins": json.loads(result.margins.to_json(orient="records")),
}))
"""


def _run(checkout: Path, root: Path, out: Path, env: dict) -> dict:
    python = checkout / ".venv" / "bin" / "python"
    start = time.perf_counter()
    proc = subprocess.run(
        [str(python), "-c", RUNNER, str(root), str(out)],
        cwd=checkout,
        env={**env, "PYTHONPATH": str(checkout)},  # worker processes import this checkout too
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"backtest in {checkout} exited {proc.returncode}")
    result = json.loads(out.read_text())
    result["process_seconds"] = time.perf_counter() - start
    return result


def _load() -> float:
    return os.getloadavg()[0]


def compare(before: dict, after: dict) -> dict:
    """Check the after run's table and margins against the before run's intervals."""

    def key_of(m: dict) -> tuple:
        return m.get("method", "model"), m["metric"], str(m["horizon"]), m["comparator"]

    margins = {key_of(m): m for m in before["margins"]}
    outside = []
    for m in after["margins"]:
        key = key_of(m)
        if key not in margins:
            outside.append({"margin": key, "why": "absent before"})
            continue
        b = margins[key]
        if not b["ci_low"] <= m["difference"] <= b["ci_high"]:
            outside.append(
                {"margin": key, "before": b["difference"], "after": m["difference"],
                 "before_ci": [b["ci_low"], b["ci_high"]]}
            )  # fmt: skip
    half = {}
    for m in before["margins"]:
        half.setdefault(m["metric"], []).append((m["ci_high"] - m["ci_low"]) / 2)
    rows_before = {(r["method"], str(r["horizon"])): r for r in before["table"]}
    moved = []
    for r in after["table"]:
        b = rows_before.get((r["method"], str(r["horizon"])))
        if b is None:
            moved.append({"row": [r["method"], r["horizon"]], "why": "absent before"})
            continue
        for metric, widths in half.items():
            have = r.get(metric) is not None and b.get(metric) is not None
            if have and abs(r[metric] - b[metric]) > min(widths):
                moved.append({"row": [r["method"], r["horizon"]], "metric": metric,
                              "before": b[metric], "after": r[metric]})  # fmt: skip
    same_methods = {(r["method"], str(r["horizon"])) for r in after["table"]} == set(rows_before)
    return {
        "same_methods_and_horizons": same_methods,
        "margins_outside_before_ci": outside,
        "table_moves_beyond_smallest_half_ci": moved,
        "n_margins": len(after["margins"]),
    }


def _report(result: dict) -> str:
    lines = [f"# Backtest before/after: {result['name']}", ""]
    lines.append(
        f"Machine: {result['machine']}; {result['rows']:,} feature rows; "
        f"runs alternate before/after, {len(result['after'])} each; 1-minute load average "
        f"at the runs' starts: {', '.join(f'{x:.1f}' for x in result['loads'])}."
    )
    lines += [
        "",
        "| checkout | run | backtest s | refits s | baselines s |",
        "|---|---:|---:|---:|---:|",
    ]
    for side in ("before", "after"):
        for i, run in enumerate(result[side]):
            lines.append(
                f"| {side} | {i + 1} | {run['seconds']:.1f} | {run['parts'].get('refits', 0):.1f} "
                f"| {run['parts'].get('baselines', 0):.1f} |"
            )
    med = result["median"]
    lines += [
        "",
        f"Median backtest: before {med['before']:.1f} s, after {med['after']:.1f} s "
        f"(after = {med['after'] / med['before']:.0%} of before).",
        "",
        "Same figures: " + json.dumps(result["comparison"], default=str),
    ]
    if result.get("note"):
        lines += ["", result["note"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="checkout of the old code")
    parser.add_argument("--after", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--root", type=Path, required=True, help="city with its feature layer")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--name", default="default")
    parser.add_argument(
        "--from-runs",
        nargs=2,
        type=Path,
        metavar=("BEFORE", "AFTER"),
        help="report two runs' JSON files already made (by this script's runner)",
    )
    parser.add_argument("--note", default="", help="added to the report")
    args = parser.parse_args()
    if args.from_runs:
        runs = [json.loads(path.read_text()) for path in args.from_runs]
        result = {"name": args.name, "before": runs[:1], "after": runs[1:], "note": args.note}
        result["machine"] = f"{os.cpu_count()} CPUs ({platform.machine()})"
        result["loads"] = [_load()]
        _write(result, args.name)
        print(_report(result))
        return

    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_"))}
    work = RESULTS / f".backtest_{args.name}"
    work.mkdir(parents=True, exist_ok=True)
    result = {"name": args.name, "repeats": args.repeats, "before": [], "after": [], "loads": []}
    result["machine"] = (
        f"{os.cpu_count()} CPUs ({platform.machine()}), Python {platform.python_version()}"
    )
    for i in range(args.repeats):
        for side in ("before", "after"):
            result["loads"].append(_load())
            checkout = args.before if side == "before" else args.after
            run = _run(checkout, args.root.resolve(), work / f"{side}_{i}.json", env)
            print(f"{side} {i + 1}: {run['seconds']:.1f} s {run['parts']}", flush=True)
            result[side].append(run)
        _write(result, args.name)  # after every pair: a stopped run still leaves its figures
    print(_report(result))


def _write(result: dict, name: str) -> None:
    result["rows"] = result["after"][0]["rows"]
    result["median"] = {
        side: statistics.median(r["seconds"] for r in result[side]) for side in ("before", "after")
    }
    result["comparison"] = compare(result["before"][0], result["after"][0])
    slim = {k: v for k, v in result.items() if k not in ("before", "after")}
    slim["runs"] = {
        side: [{k: r.get(k) for k in ("seconds", "parts", "process_seconds")} for r in result[side]]
        for side in ("before", "after")
    }
    slim["repeats"] = len(result["after"])
    (RESULTS / f"backtest_{name}.json").write_text(json.dumps(slim, indent=2, default=str))
    (RESULTS / f"backtest_{name}.md").write_text(_report(result))


if __name__ == "__main__":
    main()
