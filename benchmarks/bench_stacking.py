"""Stacking on a finished backtest: the stacked method against its components, and its cost.

Reads a root's backtest (``data/06_backtest/predictions.parquet`` and the folds
in ``results.json``) and, with ``--warmup-weeks N``, its features and panel to
forecast the ``N`` warm-up target weeks with the model and the baseline
components (``training.backtest.stacked.warmup_forecasts``, what ``harmcast
backtest`` does). It then fits the stacker per fold on the weeks up to each
cutoff (``stack_folds``), scores the components and ``stacked``, and writes the
horizon-1 table, the paired margins of ``stacked`` over each component, the
choice and the time taken to ``benchmarks/results/stacking_<tag>.{json,md}``.

With ``--warmup-weeks 0`` the first fold has nothing to learn from and is
served by the model alone, so the figures lean towards the model.

Usage: ``python benchmarks/bench_stacking.py --root ROOT --warmup-weeks 8 --tag default``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from training.backtest.folds import Fold
from training.backtest.scoring import score_backtest
from training.backtest.stacked import stack_folds, warmup_forecasts, warmup_targets
from training.config import load_params
from training.panel import read_panel_layer
from training.stacking import COMPONENTS, STACKED, choose_served

RESULTS = Path(__file__).parent / "results"
METRICS = ["poisson_deviance", "pai_area_5", "pai_area_10", "interval_coverage"]


def main() -> None:
    """Run the benchmark and write its results."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--warmup-weeks", type=int, default=8)
    parser.add_argument("--tag", default="default")
    args = parser.parse_args()
    params = load_params(root=args.root)
    paths = params.paths
    backtest = paths.resolve("backtest")
    results = json.loads((backtest / "results.json").read_text())
    folds = [Fold(f["k"], pd.Timestamp(f["cutoff"]), pd.Timestamp(f["until"]))
             for f in results["summary"]["folds"]]  # fmt: skip
    predictions = pd.read_parquet(backtest / "predictions.parquet")
    scored = predictions.loc[predictions["method"].isin(COMPONENTS)]
    panel, areas, adjacency = read_panel_layer(paths.resolve("panel"))
    start = time.perf_counter()
    warm = scored.iloc[:0]
    if args.warmup_weeks > 0:
        features = pd.read_parquet(paths.resolve("features") / "features.parquet")
        targets = warmup_targets(features, folds, args.warmup_weeks)
        warm = warmup_forecasts(features, panel, adjacency, targets, params)
    warm_seconds = time.perf_counter() - start
    start = time.perf_counter()
    forecasts = pd.concat([warm, scored], ignore_index=True)
    stacked, weights = stack_folds(forecasts, scored, folds, tuple(params.model.interval))
    stack_seconds = time.perf_counter() - start
    both = pd.concat([scored, stacked], ignore_index=True)
    table, margins, _, _ = score_backtest(both, areas, params.backtest)
    choice = choose_served(margins, horizons=[1])
    h1 = table.loc[table["horizon"] == 1, ["method", *METRICS]].sort_values("poisson_deviance")
    rows = margins.loc[(margins["method"] == STACKED) & (margins["horizon"] == 1)]
    out = {
        "root": str(args.root),
        "warmup_weeks": args.warmup_weeks,
        "warmup_seconds": round(warm_seconds, 1),
        "stacking_seconds": round(stack_seconds, 1),
        "h1_table": json.loads(h1.to_json(orient="records")),
        "h1_margins": json.loads(rows.to_json(orient="records")),
        "choice": {"method": choice.method, "reason": choice.reason_words},
        "weights_h1": [w for w in weights if w["horizon"] == 1],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"stacking_{args.tag}.json").write_text(json.dumps(out, indent=2))
    (RESULTS / f"stacking_{args.tag}.md").write_text(_markdown(out))
    print(_markdown(out))


def _markdown(out: dict) -> str:
    lines = [f"# Stacking, horizon 1 ({out['root']}, {out['warmup_weeks']} warm-up weeks)", ""]
    lines += ["| method | deviance | PAI 5% | PAI 10% | interval cover |", "|---|---|---|---|---|"]
    for r in out["h1_table"]:
        lines.append(f"| {r['method']} | " + " | ".join(f"{r[m]:.4f}" for m in METRICS) + " |")
    lines += ["", "| stacked minus | metric | difference | 95% CI |", "|---|---|---|---|"]
    for m in out["h1_margins"]:
        lines.append(f"| {m['comparator']} | {m['metric']} | {m['difference']:+.4f} | "
                     f"[{m['ci_low']:+.4f}, {m['ci_high']:+.4f}] |")  # fmt: skip
    lines += ["", f"Served: **{out['choice']['method']}**. {out['choice']['reason']}", ""]
    lines += ["| fold | cutoff | model | GLM | Hawkes | hotspot | weeks learned from |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for w in out["weights_h1"]:
        ws = " | ".join(f"{w['weights'][c]:.3f}" for c in COMPONENTS)
        span = " to ".join(w["learned_from"]) or "none (model alone)"
        lines.append(f"| {w['k']} | {w['cutoff']} | {ws} | {span} |")
    lines += ["", f"Warm-up forecasts took {out['warmup_seconds']} s; fitting and applying the "
              f"stacker {out['stacking_seconds']} s.", ""]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
