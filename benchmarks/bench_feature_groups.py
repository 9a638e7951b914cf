"""The cost of the lead-time feature groups: features and backtest time, before and after.

Two checkouts (``--before``: one without the groups, e.g. ``git archive`` of an
earlier commit; ``--after``: this one) each run ``harmcast features`` and then
``harmcast backtest`` on their own copy of a city root (``--before-root``,
``--after-root``: the layers up to ``data/03_panel``, and ``data/02_linked``
for the near-repeat group; each with a ``params.yaml`` its checkout accepts).
Both checkouts run with this interpreter, one process per step, one after the
other. Wall and CPU seconds of each step, the load average after it, and the
after run's ablation table are written to
``benchmarks/results/feature_groups_<name>.json``.

Usage::

    uv run python benchmarks/bench_feature_groups.py --before /tmp/base \\
        --before-root /tmp/city_before --after-root /tmp/city_after --name tiny
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
HERE = Path(__file__).resolve().parents[1]


def _step(checkout: Path, root: Path, command: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    code = "from harmcast.cli import app; app()"
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, command, "--root", str(root)],
                          cwd=checkout, env=env, capture_output=True, text=True)  # fmt: skip
    wall = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{command} in {checkout} failed:\n{done.stdout}\n{done.stderr}")
    return {
        "command": command,
        "wall_s": round(wall, 1),
        "cpu_s": round((cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime), 1),
        "load_after": os.getloadavg(),
    }


def main() -> None:
    """Run both checkouts' features and backtest and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, default=HERE)
    parser.add_argument("--before-root", type=Path, required=True)
    parser.add_argument("--after-root", type=Path, required=True)
    parser.add_argument("--name", default="default")
    args = parser.parse_args()
    out: dict = {"cpus": os.cpu_count()}
    for label, checkout, root in (("before", args.before, args.before_root),
                                  ("after", args.after, args.after_root)):  # fmt: skip
        out[label] = [_step(checkout, root, c) for c in ("features", "backtest")]
    results = json.loads((args.after_root / "data/06_backtest/results.json").read_text())
    out["ablations"] = results.get("ablations", [])
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"feature_groups_{args.name}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "ablations"}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
