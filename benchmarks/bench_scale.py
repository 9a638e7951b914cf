"""Time and peak memory of linking, panel, features and training: pandas vs Dask.

For each size (areas x weeks) a synthetic city is generated once; then each
(step, engine) runs in its own process, reading the previous step's output
written by the pandas engine, so steps are measured apart. Peak memory is the
largest summed resident memory of the process and all its children (the Dask
workers), sampled every 0.2 s. The Dask engine runs a LocalCluster of
``--workers`` processes x 2 threads on this machine; cluster start-up is
reported apart from the step's time
(it includes the workers importing the library). How cost grows is the slope of
log(seconds) and log(peak MB) against log(areas x weeks).

Usage::

    uv run python benchmarks/bench_scale.py                      # the grid below
    uv run python benchmarks/bench_scale.py --sizes 1000x156 5000x260

Writes ``benchmarks/results/scale.json``, ``scale.md`` and ``scale.png``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
STEPS = ("link", "panel", "features", "train")
ENGINES = ("pandas", "dask")
DEFAULT_SIZES = ("1000x156", "5000x260", "35700x52")
ROUNDS = 100  # boosting rounds of every benchmarked fit (the default is 300)


def _dask_params(workers: int):
    from training.config import DaskParams

    return DaskParams(n_workers=workers, threads_per_worker=2, processes=True,
                      partition_areas=2000, partition_rows=500_000)  # fmt: skip


def _child(step: str, engine: str, work: Path, workers: int) -> dict:
    """Run one step with one engine; return its timings (seconds)."""
    import pandas as pd

    from training.config import ModelParams, Params
    from training.features import build_features, feature_columns
    from training.link import link_sources, write_linked
    from training.model import fit_forecaster
    from training.panel import build_panel

    params, raw, out = Params(), work / "data" / "01_raw", work / "pandas"
    model = ModelParams(num_boost_round=ROUNDS, num_threads=2)
    linked = out / "02_linked"
    if engine == "pandas":
        start = time.perf_counter()
        if step == "link":
            result = link_sources(raw, params.sources, params.link)
            seconds, n = time.perf_counter() - start, len(result.records)
            write_linked(result, linked)
        elif step == "panel":
            records = pd.read_parquet(linked / "records.parquet")
            areas = pd.read_parquet(linked / "areas.parquet")
            start = time.perf_counter()
            panel = build_panel(records, areas)
            seconds, n = time.perf_counter() - start, len(panel)
            panel.to_parquet(out / "panel.parquet", index=False)
        elif step == "features":
            panel = pd.read_parquet(out / "panel.parquet")
            areas = pd.read_parquet(linked / "areas.parquet")
            adjacency = pd.read_parquet(linked / "adjacency.parquet")
            start = time.perf_counter()
            features = build_features(panel, areas, adjacency, params.features)
            seconds, n = time.perf_counter() - start, len(features)
            features.to_parquet(out / "features.parquet", index=False)
        else:
            features = pd.read_parquet(out / "features.parquet")
            start = time.perf_counter()
            fit_forecaster(features, feature_columns(features), model)
            seconds, n = time.perf_counter() - start, len(features)
        return {"seconds": round(seconds, 2), "rows_out": n}
    return _dask_child(step, work, workers, model)


def _dask_child(step: str, work: Path, workers: int, model) -> dict:
    import dask.dataframe as dd
    import numpy as np
    import pandas as pd
    from distributed import wait

    from training.config import Params
    from training.features import feature_columns
    from training.scale import (
        build_features_dask,
        build_panel_dask,
        dask_client,
        fit_forecaster_dask,
        link_sources_dask,
    )

    params, raw, out = Params(), work / "data" / "01_raw", work / "pandas"
    linked, dp = out / "02_linked", _dask_params(workers)
    begin = time.perf_counter()
    with dask_client(dp) as client:
        # Workers import the library once; that belongs to start-up, not to the step.
        client.run(importlib.import_module, "training.scale")
        cluster_s = time.perf_counter() - begin
        areas = pd.read_parquet(linked / "areas.parquet")
        adjacency = pd.read_parquet(linked / "adjacency.parquet")

        def scatter(name: str, rows_per_part: int):
            frame = pd.read_parquet(out / name)
            parts = max(1, int(np.ceil(len(frame) / rows_per_part)))
            return dd.from_pandas(frame, npartitions=parts, sort=False)

        if step == "link":
            start = time.perf_counter()
            result = link_sources_dask(raw, params.sources, params.link, params=dp)
            frame = result.records.persist()
        elif step == "panel":
            records = scatter("02_linked/records.parquet", dp.partition_rows)
            start = time.perf_counter()
            frame = build_panel_dask(records, areas, params=dp).persist()
        elif step == "features":
            panel = scatter("panel.parquet", dp.partition_rows)
            start = time.perf_counter()
            frame = build_features_dask(panel, areas, adjacency, params.features,
                                        dask_params=dp).persist()  # fmt: skip
        else:
            features = scatter("features.parquet", dp.partition_rows)
            start = time.perf_counter()
            fit_forecaster_dask(features, feature_columns(features._meta), model, client=client)
            return {"seconds": round(time.perf_counter() - start, 2),
                    "cluster_start_s": round(cluster_s, 2)}  # fmt: skip
        wait(frame)
        seconds = time.perf_counter() - start
        n = int(frame.map_partitions(len).compute().sum())
    return {"seconds": round(seconds, 2), "rows_out": n, "cluster_start_s": round(cluster_s, 2)}


def _measure(cmd: list[str]) -> dict:
    """Run ``cmd``; return its JSON answer plus wall time and peak tree memory."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    root, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.2)
    out = proc.stdout.read() if proc.stdout else ""
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}", "wall_s": round(time.perf_counter() - start, 1)}
    answer = json.loads(out.strip().splitlines()[-1])
    answer.update(wall_s=round(time.perf_counter() - start, 2), peak_mb=round(peak / 2**20, 1))
    return answer


def _synth(work: Path, areas: int, weeks: int) -> dict:
    from training.config import SynthParams
    from training.synth import generate_city

    raw, done = work / "data" / "01_raw", work / "synth.json"
    while raw.is_dir() and not done.is_file():  # another process is generating it
        time.sleep(5)
    if done.is_file():
        return json.loads(done.read_text())
    start = time.perf_counter()
    summary = generate_city(SynthParams(preset="default", n_areas=areas, n_weeks=weeks), raw)
    rows = summary.police_rows + summary.istv_rows + summary.ambulance_rows
    info = {"seconds": round(time.perf_counter() - start, 1), "raw_records": rows}
    done.write_text(json.dumps(info))
    return info


def _slopes(runs: list[dict]) -> dict:
    """Log-log slope of seconds and peak MB against cells (areas x weeks)."""
    import numpy as np

    slopes: dict = {}
    for step in STEPS:
        for engine in ENGINES:
            pts = [(r["cells"], r[step][engine]) for r in runs
                   if "seconds" in r.get(step, {}).get(engine, {})]  # fmt: skip
            if len(pts) < 2:
                continue
            x = np.log([c for c, _ in pts])
            fit = {k: float(np.polyfit(x, np.log([max(m[k], 1e-3) for _, m in pts]), 1)[0])
                   for k in ("seconds", "peak_mb")}  # fmt: skip
            slopes[f"{step}/{engine}"] = {k: round(v, 2) for k, v in fit.items()}
    return slopes


def _markdown(report: dict) -> str:
    lines = ["# Scale benchmark: pandas vs Dask", "",
             f"Machine: {report['machine']}. Dask: LocalCluster, {report['dask']}.",
             f"Training: {ROUNDS} boosting rounds on at most 250,000 sampled rows.",
             "Seconds exclude reading inputs and starting the cluster; peak MB is the",
             "summed resident memory of the process and its Dask workers.", "",
             "| areas x weeks | step | pandas s | dask s | pandas peak MB | dask peak MB |",
             "|---|---|---:|---:|---:|---:|"]  # fmt: skip
    for run in report["runs"]:
        for step in STEPS:
            cells = [run.get(step, {}).get(e, {}) for e in ENGINES]
            sec = [str(c.get("seconds", c.get("error", "-"))) for c in cells]
            mem = [str(c.get("peak_mb", "-")) for c in cells]
            lines.append(f"| {run['size']} | {step} | {sec[0]} | {sec[1]} | {mem[0]} | {mem[1]} |")
    lines += ["", "## How cost grows (log-log slope against areas x weeks)", "",
              "| step / engine | time slope | memory slope |", "|---|---:|---:|"]  # fmt: skip
    for name, fit in report["slopes"].items():
        lines.append(f"| {name} | {fit['seconds']} | {fit['peak_mb']} |")
    lines += ["", *[f"- {note}" for note in report["notes"]]]
    return "\n".join(lines) + "\n"


def _plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for step in STEPS:
        for engine, style in zip(ENGINES, ("-o", "--s"), strict=True):
            pts = [(r["cells"], r[step][engine]) for r in report["runs"]
                   if "seconds" in r.get(step, {}).get(engine, {})]  # fmt: skip
            if not pts:
                continue
            for ax, key in zip(axes, ("seconds", "peak_mb"), strict=True):
                ax.plot([c for c, _ in pts], [m[key] for _, m in pts], style,
                        label=f"{step} ({engine})")  # fmt: skip
    for ax, label in zip(axes, ("seconds", "peak memory (MB)"), strict=True):
        ax.set(xscale="log", yscale="log", xlabel="areas x weeks", ylabel=label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7, ncol=2)
    fig.suptitle("pandas vs Dask (LocalCluster) by size")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", default=list(DEFAULT_SIZES), help="AREASxWEEKS")
    parser.add_argument("--steps", nargs="*", default=list(STEPS))
    parser.add_argument("--engines", nargs="*", default=list(ENGINES))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--root", type=Path, default=Path("/tmp/harmcast-bench-scale"))
    parser.add_argument("--note", action="append", default=[], help="added to the report")
    parser.add_argument("--child", nargs=3, metavar=("STEP", "ENGINE", "WORK"))
    args = parser.parse_args()
    if args.child:
        step, engine, work = args.child
        print(json.dumps(_child(step, engine, Path(work), args.workers)))
        return
    previous, known = RESULTS / "scale.json", {}
    if previous.is_file():  # keep what earlier invocations measured
        known = {r["size"]: r for r in json.loads(previous.read_text())["runs"]}
        args.note = list(dict.fromkeys([*json.loads(previous.read_text())["notes"], *args.note]))
    for size in args.sizes:
        areas, weeks = (int(v) for v in size.split("x"))
        work = args.root / size
        run = known.setdefault(size, {"size": size, "areas": areas, "weeks": weeks,
                                      "cells": areas * weeks})  # fmt: skip
        run["synth"] = _synth(work, areas, weeks)
        for step in args.steps:
            run.setdefault(step, {})
            for engine in args.engines:
                cmd = [sys.executable, __file__, "--workers", str(args.workers),
                       "--child", step, engine, str(work)]  # fmt: skip
                run[step][engine] = _measure(cmd)
                print(size, step, engine, run[step][engine], flush=True)
                _write(known, args)  # each figure is kept even if a later one fails
    _write(known, args)


def _write(known: dict, args) -> None:
    runs = sorted(known.values(), key=lambda r: r["cells"])
    report = {
        "machine": f"{os.cpu_count()} CPUs, {platform.python_version()}, {_total_gb():.0f} GB RAM",
        "dask": f"{args.workers} worker processes x 2 threads",
        "runs": runs,
        "slopes": _slopes(runs),
        "notes": args.note,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scale.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "scale.md").write_text(_markdown(report))
    _plot(report, RESULTS / "scale.png")


def _total_gb() -> float:
    import psutil

    return psutil.virtual_memory().total / 2**30


if __name__ == "__main__":
    main()
