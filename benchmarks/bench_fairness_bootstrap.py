"""The fairness audit's bootstrap on the default city's panel, before and after, same run.

A stand-in forecast (each area's mean violence over the 13 weeks before the
target week) for the last 26 weeks of a prepared root's panel is audited by
``governance.fairness.fairness_audit`` with the project policy (200 bootstrap
resamples), once from a worktree of the baseline commit and once from this
tree, in subprocesses. Used when the full ``harmcast audit`` comparison
(``bench_audit_speed.py``) cannot run: it needs a backtest and a final model
of the default city.

    python benchmarks/bench_fairness_bootstrap.py --root /tmp/city --before /tmp/audit_before

Writes ``benchmarks/results/fairness_bootstrap.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
HERE = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
import pandas as pd
from governance.fairness import fairness_audit
from governance.policy import load_policy
root = sys.argv[1]
panel = pd.read_parquet(root + "/data/03_panel/panel.parquet")
areas = pd.read_parquet(root + "/data/03_panel/areas.parquet")
wide = panel.pivot(index="week_start", columns="area_code", values="violence").sort_index()
ae = panel.pivot(index="week_start", columns="area_code", values="ae_assault").sort_index()
mu = wide.shift(1).rolling(13).mean()
weeks = wide.index[-26:]
rows = pd.DataFrame({
    "area_code": list(wide.columns) * len(weeks),
    "target_week": [w for w in weeks for _ in wide.columns],
    "horizon": 1,
    "mu": mu.loc[weeks].to_numpy().ravel().clip(1e-3),
    "y": wide.loc[weeks].to_numpy().ravel().astype(float),
    "y_ae": ae.loc[weeks].to_numpy().ravel().astype(float),
})
policy = load_policy()
start = time.perf_counter()
audit = fairness_audit(rows, areas, policy.fairness)
seconds = time.perf_counter() - start
out = audit.ratios[["grouping", "metric", "group", "ratio", "ci_low", "ci_high", "passed"]]
print(json.dumps({"seconds": seconds, "ratios": json.loads(out.to_json(orient="records"))}))
"""


def run(tree: Path, root: Path) -> dict:
    """Run the child in ``tree``; return its seconds and ratios."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", CHILD, str(root)], cwd=tree, env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    """Time both trees on one root and compare their intervals and verdicts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--before", type=Path, required=True)
    args = parser.parse_args()
    load = [round(x, 1) for x in os.getloadavg()]
    before = run(args.before.resolve(), args.root.resolve())
    after = run(HERE, args.root.resolve())
    key = ("grouping", "metric", "group")
    old = {tuple(r[k] for k in key): r for r in before["ratios"]}
    new = {tuple(r[k] for k in key): r for r in after["ratios"]}
    common = sorted(old.keys() & new.keys())
    verdicts = [k for k in common if old[k]["passed"] != new[k]["passed"]]
    shift = max(
        (max(abs(old[k]["ci_low"] - new[k]["ci_low"]), abs(old[k]["ci_high"] - new[k]["ci_high"]))
         for k in common if old[k]["ci_low"] is not None and new[k]["ci_low"] is not None),
        default=0.0,
    )  # fmt: skip
    payload = {"before_s": round(before["seconds"], 1), "after_s": round(after["seconds"], 1),
               "rows_compared": len(common), "verdicts_differ": [list(k) for k in verdicts],
               "max_interval_bound_shift": shift, "load_at_start": load}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fairness_bootstrap.json").write_text(json.dumps(payload, indent=2))
    (RESULTS / "fairness_bootstrap.md").write_text(
        "# Fairness audit bootstrap on the default city's panel: before and after, same run\n\n"
        "Stand-in forecast (13-week trailing mean), last 26 weeks, 1000 areas, project "
        "policy (200 resamples). Written by benchmarks/bench_fairness_bootstrap.py.\n\n"
        f"| tree | seconds |\n|---|---|\n| before | {payload['before_s']} |\n"
        f"| after | {payload['after_s']} |\n\n"
        f"Speed-up: {before['seconds'] / after['seconds']:.1f}x. Ratio rows compared: "
        f"{len(common)}; verdicts that differ: {len(verdicts)}; largest shift of an interval "
        f"bound: {shift:.3g}. Load average at start: {load} (2 CPUs, shared).\n"
    )
    print(json.dumps(payload))


if __name__ == "__main__":
    main()
