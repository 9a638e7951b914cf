"""LightGBM fit time under OpenMP's two wait policies, alone and beside other work.

OpenMP threads that wait for work either spin (``OMP_WAIT_POLICY=ACTIVE``,
libgomp's behaviour for a while after each parallel region) or sleep
(``PASSIVE``). On a small machine shared with another busy process, spinning
threads take the cores the working threads need. Each case fits the same
booster (the default city's last backtest fold, the model's own settings) in a
fresh process, since the policy is read when the OpenMP runtime loads:

- ``alone``: nothing else runs;
- ``busy``: ``--busy`` processes spin on the CPU for the whole fit (one
  stands for a test suite or a second job beside the main job).

Each case is timed ``--repeats`` times, alternating policies, and the median is
kept. Usage (after ``harmcast features`` on the default city)::

    uv run python benchmarks/bench_omp_wait.py --root .

Writes ``benchmarks/results/omp_wait.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

FIT = """
import sys, time
from pathlib import Path
import numpy as np, pandas as pd
from training.backtest.folds import plan_folds
from training.config import load_params
from training.features import feature_columns
from training.model import fit_forecaster

root = Path(sys.argv[1])
params = load_params(root / "params.yaml" if (root / "params.yaml").exists() else None, root=root)
features = pd.read_parquet(params.paths.resolve("features") / "features.parquet")
fold = plan_folds(features, params.backtest)[-1]
known = features["y"].notna().to_numpy()
rows = np.flatnonzero(known & (features["target_week"].to_numpy() <= fold.cutoff.to_datetime64()))
start = time.perf_counter()
fit_forecaster(features, feature_columns(features), params.model, rows=rows,
               num_boost_round=int(sys.argv[2]))
print(time.perf_counter() - start)
"""


def _spin(stop) -> None:
    while not stop.is_set():
        sum(range(10_000))


def fit_seconds(root: Path, policy: str, rounds: int, busy: int) -> float:
    """Time one fit in a fresh process with ``OMP_WAIT_POLICY=policy``."""
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    stop = mp.Event()
    spinners = [mp.Process(target=_spin, args=(stop,)) for _ in range(busy)]
    for p in spinners:
        p.start()
    try:
        out = subprocess.run(
            [sys.executable, "-c", FIT, str(root), str(rounds)],
            env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
    finally:
        stop.set()
        for p in spinners:
            p.join()
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."))
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument("--busy", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cases = [("alone", 0), ("busy", args.busy)]
    times: dict[str, dict[str, list[float]]] = {c: {"ACTIVE": [], "PASSIVE": []} for c, _ in cases}
    for case, busy in cases:
        for _ in range(args.repeats):
            for policy in ("ACTIVE", "PASSIVE"):
                t = fit_seconds(args.root.resolve(), policy, args.rounds, busy)
                times[case][policy].append(t)
                print(f"{case:5s} {policy:7s} {t:7.1f} s", flush=True)
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "rounds": args.rounds,
        "busy_processes": args.busy,
        "seconds": times,
        "median": {c: {p: statistics.median(v) for p, v in d.items()} for c, d in times.items()},
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "omp_wait.json").write_text(json.dumps(result, indent=2))
    lines = [
        "# LightGBM fit time by OpenMP wait policy",
        "",
        f"One fit of the last backtest fold ({args.rounds} rounds, the model's settings), "
        f"median of {args.repeats}; `busy` runs {args.busy} spinning process(es) beside it. "
        f"{os.cpu_count()} CPUs.",
        "",
        "| case | ACTIVE s | PASSIVE s | ACTIVE / PASSIVE |",
        "|---|---:|---:|---:|",
    ]
    for case, med in result["median"].items():
        ratio = med["ACTIVE"] / med["PASSIVE"]
        lines.append(f"| {case} | {med['ACTIVE']:.1f} | {med['PASSIVE']:.1f} | {ratio:.2f} |")
    (RESULTS / "omp_wait.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
