"""Time and peak memory of linking, panel, features and training: pandas vs Dask.

For each size (areas x weeks) a synthetic city is generated once; then each
(step, engine) runs in its own process as its command runs it: it reads the
previous layer from disk, computes, and writes its own layer (``train`` fits
and saves the model; MLflow logging is left out). Each engine reads the layer
its own previous step wrote, or the other engine's when its own step was not
run (the two paths write equal layers). Peak memory is the largest summed
resident memory of the process and all its children (the Dask workers),
sampled every 0.2 s; a process that passes ``--mem-cap-gb`` or
``--timeout-s`` is stopped and recorded as such. The Dask engine runs a
LocalCluster on this machine, started (and the library imported on its
workers) before the step's clock starts. How cost grows is the log-log slope
of time and peak memory against areas (weeks fixed) and against weeks (areas
fixed); see ``bench_scale_report.py``.

Usage::

    uv run python benchmarks/bench_scale.py                      # the grid below
    uv run python benchmarks/bench_scale.py --sizes 1000x52 --engines pandas
    uv run python benchmarks/bench_scale.py --skip 35700x104:features:pandas="reason"
    uv run python benchmarks/bench_scale.py --report-only --commentary notes.md

Writes ``benchmarks/results/scale.json``, ``scale.md`` and ``scale.png``
after every measured step, so a partial run still leaves its figures.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale_report import RESULTS, STEPS, write_report  # noqa: E402

ENGINES = ("pandas", "dask")
# areas 1000/5000/35700 at 52 weeks; weeks 52/104/260 at 5000 areas (5000x260: london).
# 35700x104 (two national years) is not in the grid: its Dask features peak near 19 GB,
# above the default cap; measure it with --sizes 35700x104 --mem-cap-gb 20.
DEFAULT_SIZES = ("1000x52", "5000x52", "5000x104", "5000x260", "35700x52")
ROUNDS = 100  # boosting rounds of every benchmarked fit (the default is 150)
TRAIN_ROWS = 250_000  # training rows sampled (seeded) per fit, both engines
LAYERS = {"link": "linked", "panel": "panel", "features": "features", "train": "models"}
OUTPUT = {
    "link": "records.parquet",
    "panel": "panel.parquet",
    "features": "features.parquet",
    "train": "model.lgb",
}


def _params(work: Path, engine: str, step: str, args: argparse.Namespace):
    """The configuration one child runs with: layers under ``work/<engine>``."""
    from training.config import DaskParams, ModelParams, Params, Paths

    # LightGBM gets one OpenMP thread per fit on both engines: with two threads
    # per fit it spin-waits badly when another job loads the two cores.
    threads = 1 if step == "train" else 2
    # model_construct: DaskParams asks for 2+ threads per worker, but lightgbm.dask
    # gives each fit as many OpenMP threads as its worker has (1 trains fine).
    dask = DaskParams.model_construct(
        **{
            **DaskParams().model_dump(),
            "n_workers": args.workers,
            "threads_per_worker": threads,
            "memory_limit": args.worker_memory,
        }
    )
    model = ModelParams(
        num_boost_round=ROUNDS, num_threads=1, max_train_rows=args.max_train_rows or None
    )
    paths = Paths(root=work / engine, raw=(work / "data" / "01_raw").resolve())
    return Params(model=model, dask=dask, paths=paths)


def _pandas_step(step: str, params) -> dict:
    import pandas as pd

    from training.features import build_features, feature_columns
    from training.link.linker import link_sources, write_linked
    from training.model import fit_forecaster
    from training.panel import build_panel, read_panel_layer, write_panel

    p = params.paths.resolve
    start = time.perf_counter()
    if step == "link":
        result = link_sources(p("raw"), params.sources, params.link)
        compute, n = time.perf_counter() - start, len(result.records)
        write_linked(result, p("linked"))
    elif step == "panel":
        areas = pd.read_parquet(p("linked") / "areas.parquet")
        adjacency = pd.read_parquet(p("linked") / "adjacency.parquet")
        records = pd.read_parquet(p("linked") / "records.parquet")
        begin = time.perf_counter()
        panel = build_panel(records, areas)
        compute, n = time.perf_counter() - begin, len(panel)
        write_panel(panel, p("panel"), areas=areas, adjacency=adjacency)
    elif step == "features":
        layer = read_panel_layer(p("panel"))
        begin = time.perf_counter()
        features = build_features(*layer, params.features)
        compute, n = time.perf_counter() - begin, len(features)
        p("features").mkdir(parents=True, exist_ok=True)
        features.to_parquet(p("features") / "features.parquet", index=False)
    else:
        features = pd.read_parquet(p("features") / "features.parquet")
        begin = time.perf_counter()
        model = fit_forecaster(features, feature_columns(features), params.model)
        compute, n = time.perf_counter() - begin, len(features)
        model.save(p("models"))
    return {
        "seconds": round(time.perf_counter() - start, 2),
        "compute_s": round(compute, 2),
        "rows_out": int(n),
    }


def _dask_step(step: str, params) -> dict:
    from training.scale import (
        features_on_dask,
        ingest_on_dask,
        panel_on_dask,
        shared_client,
        train_on_dask,
    )

    begin = time.perf_counter()
    with shared_client(params.dask) as client:
        # Workers import the library once; that belongs to start-up, not to the step.
        client.run(importlib.import_module, "training.scale")
        cluster_s = time.perf_counter() - begin
        start = time.perf_counter()
        if step == "link":
            done = ingest_on_dask(params.paths.resolve("raw"), params)
            seconds = time.perf_counter() - start
            n = int(done.link.records.map_partitions(len).compute().sum())
        elif step == "train":
            train_on_dask(params).forecaster.save(params.paths.resolve("models"))
            seconds, n = time.perf_counter() - start, None
        else:
            run = panel_on_dask if step == "panel" else features_on_dask
            summary = run(params).summary
            seconds = time.perf_counter() - start
            n = summary.get("rows", summary.get("areas", 0) * summary.get("weeks", 0))
    return {
        "seconds": round(seconds, 2),
        "rows_out": n,
        "cluster_start_s": round(cluster_s, 2),
        "worker_memory": params.dask.memory_limit,
    }


def _child(step: str, engine: str, work: Path, args: argparse.Namespace) -> dict:
    if step == "synth":
        return _synth(work, args)
    params = _params(work, engine, step, args)
    run = _pandas_step if engine == "pandas" else _dask_step
    # the defaults may change between runs: keep what this figure was measured with
    return {**run(step, params), "config": _config(params)}


def _config(params) -> dict:
    m = params.model
    return {
        "lags": list(params.features.lags),
        "windows": list(params.features.windows),
        "bagging_fraction": m.bagging_fraction,
        "split_by_horizon": m.split_by_horizon,
        "num_leaves": m.num_leaves,
        "max_train_rows": m.max_train_rows,
    }


def _synth(work: Path, args: argparse.Namespace) -> dict:
    from training.config import SynthParams
    from training.synth.city import generate_city

    areas, weeks = (int(v) for v in work.name.split("x"))
    preset = "national" if areas > 20_000 else "london" if areas >= 5000 else "default"
    start = time.perf_counter()
    summary = generate_city(
        SynthParams(preset=preset, n_areas=areas, n_weeks=weeks), work / "data" / "01_raw"
    )
    rows = summary.police_rows + summary.istv_rows + summary.ambulance_rows
    return {
        "seconds": round(time.perf_counter() - start, 1),
        "raw_records": int(rows),
        "preset": preset,
    }


def _layer(work: Path, engine: str, step: str) -> Path:
    from training.config import Paths

    return (work / engine / getattr(Paths(), LAYERS[step])).absolute()


def _prepare(work: Path, engine: str, step: str) -> dict | None:
    """Clear the step's layer and find its inputs (own engine first); say why not to run."""
    out = _layer(work, engine, step)
    if out.is_symlink() or out.is_file():
        out.unlink()
    elif out.is_dir():
        shutil.rmtree(out)
    needs = {"link": [], "panel": ["link"], "features": ["panel"], "train": ["features", "panel"]}
    borrowed = []
    for before in needs[step]:
        own = _layer(work, engine, before)
        if (own / OUTPUT[before]).is_file():
            continue
        other = _layer(work, next(e for e in ENGINES if e != engine), before)
        if not (other / OUTPUT[before]).is_file():
            return {"not_run": f"no {before} layer to read ({before} did not run on either engine)"}
        if own.is_symlink():
            own.unlink()
        shutil.rmtree(own, ignore_errors=True)
        own.parent.mkdir(parents=True, exist_ok=True)
        own.symlink_to(other, target_is_directory=True)
        borrowed.append(before)
    return {"inputs_from_other_engine": borrowed} if borrowed else {}


def _measure(cmd: list[str], log: Path, *, cap_gb: float, timeout_s: float) -> dict:
    """Run ``cmd``; return its JSON answer plus wall time, peak tree memory and load."""
    import psutil

    start, peak, load_max, stopped = time.perf_counter(), 0, 0.0, None
    with log.open("a") as err:
        err.write(f"\n$ {' '.join(cmd)}\n")
        err.flush()
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True
        )
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            load_max = max(load_max, os.getloadavg()[0])
            elapsed = time.perf_counter() - start
            if stopped is None and (peak > cap_gb * 2**30 or elapsed > timeout_s):
                over = peak > cap_gb * 2**30
                stopped = f"peak memory passed the {cap_gb:g} GB cap" if over else "timed out"
                os.killpg(proc.pid, signal.SIGKILL)  # the child's own session: it and its workers
            time.sleep(0.2)
        out = proc.stdout.read() if proc.stdout else ""
    figures = {
        "wall_s": round(time.perf_counter() - start, 1),
        "peak_mb": round(peak / 2**20),
        "load_max": round(load_max, 1),
    }
    if stopped:
        return {"not_run": f"stopped: {stopped} after {figures['wall_s']:.0f} s", **figures}
    if proc.returncode != 0:
        return {"not_run": f"failed: exit {proc.returncode} (see {log})", **figures}
    return {**json.loads(out.strip().splitlines()[-1]), **figures}


def _skips(items: list[str]) -> list[tuple[list[str], str]]:
    rules = []
    for item in items:
        key, _, reason = item.partition("=")
        rules.append((key.split(":"), reason.strip() or "skipped"))
    return rules


def _skip_reason(rules, size: str, step: str, engine: str) -> str | None:
    for (s, st, en), reason in rules:
        if all(a in ("*", b) for a, b in ((s, size), (st, step), (en, engine))):
            return reason
    return None


def _run_size(size: str, run: dict, args: argparse.Namespace, save) -> None:
    work = (args.root / size).absolute()
    log = work / "bench.log"
    work.mkdir(parents=True, exist_ok=True)
    child = [
        sys.executable,
        __file__,
        "--workers",
        str(args.workers),
        "--worker-memory",
        args.worker_memory,
        "--max-train-rows",
        str(args.max_train_rows),
    ]
    if "seconds" not in run.get("synth", {}):
        shutil.rmtree(work / "data", ignore_errors=True)
        run["synth"] = _measure(
            [*child, "--child", "synth", "-", str(work)],
            log,
            cap_gb=args.mem_cap_gb,
            timeout_s=args.timeout_s,
        )
        print(size, "synth", run["synth"], flush=True)
        save()
    for step in args.steps:
        for engine in args.engines:
            cell = run.setdefault(step, {}).get(engine, {})
            if "seconds" in cell and not args.redo:
                continue
            reason = _skip_reason(args.skip, size, step, engine)
            prep = {"not_run": reason} if reason else _prepare(work, engine, step)
            if "not_run" not in prep:
                cmd = [*child, "--child", step, engine, str(work)]
                prep |= _measure(cmd, log, cap_gb=args.mem_cap_gb, timeout_s=args.timeout_s)
            if "not_run" in prep:
                _prepare(work, engine, step)  # no half-written layer for the next step to read
            run[step][engine] = prep
            print(size, step, engine, prep, flush=True)
            save()  # each figure is kept even if a later one fails


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", default=list(DEFAULT_SIZES), help="AREASxWEEKS")
    parser.add_argument("--steps", nargs="*", default=list(STEPS))
    parser.add_argument("--engines", nargs="*", default=list(ENGINES))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-memory", default="auto", help="memory limit per Dask worker")
    parser.add_argument("--max-train-rows", type=int, default=TRAIN_ROWS, help="0: all rows")
    parser.add_argument("--mem-cap-gb", type=float, default=14.0)
    parser.add_argument("--timeout-s", type=float, default=900.0, help="per step and engine")
    parser.add_argument("--root", type=Path, default=Path("/tmp/bench_scale"))
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of scale.*")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        help="SIZE:STEP:ENGINE=REASON ('*' matches all); recorded as not run",
    )
    parser.add_argument("--redo", action="store_true", help="measure again what was measured")
    parser.add_argument("--fresh", action="store_true", help="forget earlier results")
    parser.add_argument("--note", action="append", default=[], help="added to the report")
    parser.add_argument("--commentary", type=Path, help="markdown kept in the report")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("STEP", "ENGINE", "WORK"))
    args = parser.parse_args()
    if args.child:
        step, engine, work = args.child
        print(json.dumps(_child(step, engine, Path(work), args)))
        return
    args.skip = _skips(args.skip)
    previous = args.out / "scale.json"
    report = json.loads(previous.read_text()) if previous.is_file() and not args.fresh else {}
    known = {r["size"]: r for r in report.get("runs", [])}
    report["notes"] = list(dict.fromkeys([*report.get("notes", []), *args.note]))
    if args.commentary:
        report["commentary"] = args.commentary.read_text()
    settings = {
        "workers": args.workers,
        "worker_memory": args.worker_memory,
        "max_train_rows": args.max_train_rows or None,
        "rounds": ROUNDS,
        "mem_cap_gb": args.mem_cap_gb,
        "timeout_s": args.timeout_s,
    }
    report["settings"] = report.get("settings", settings) if args.report_only else settings

    def save() -> None:
        report["runs"] = sorted(known.values(), key=lambda r: (r["areas"], r["weeks"]))
        write_report(report, args.out)

    if not args.report_only:
        for size in args.sizes:
            areas, weeks = (int(v) for v in size.split("x"))
            run = known.setdefault(size, {"size": size, "areas": areas, "weeks": weeks})
            _run_size(size, run, args, save)
    save()


if __name__ == "__main__":
    main()
