"""Time and peak memory of the backtest as the city grows (areas, weeks), on pandas.

The data layers of each size (areas x weeks) are built by ``bench_scale.py``
(``--steps link panel features --engines pandas``, synthetic city of the
matching preset) under ``--root``; this script then runs the backtest on them,
each size in its own process (peak memory of that process, sampled every
0.2 s, with a cap and a time-out as in ``bench_scale.py``). Each refit of the
model and its ablations samples at most ``--max-train-rows`` training rows
(seeded), as ``harmcast train`` does with ``model.max_train_rows``; the
baselines use every row. The feature columns are held as float32 (half the
memory of float64; LightGBM bins float32 anyway). How cost grows is the log-log slope of seconds and
peak memory against areas (weeks fixed) and against weeks (areas fixed).

At national size (35,700 areas) the synthetic city's linking is itself the
bottleneck (13.6 million raw records), so ``--layers generated`` skips it: the
panel is drawn directly from a simple violence process (each area's own rate,
a seasonal cycle, a self-exciting term, council counts), on a square grid of
areas with rook-neighbour adjacency, and ``training.features.build_features``
makes the feature layer from it as the pipeline does. The backtest then runs
unchanged on it (without an oracle).

Usage::

    uv run python benchmarks/bench_scale.py --sizes 5000x52 --engines pandas \
        --steps link panel features --root /tmp/bs --out /tmp/bs-out
    uv run python benchmarks/bench_backtest_scale.py --sizes 5000x52 --root /tmp/bs
    uv run python benchmarks/bench_backtest_scale.py --layers generated --sizes 35700x104

Writes ``benchmarks/results/backtest_scale.json`` and ``.md`` after every size.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import _measure  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def generated_layers(n_areas: int, n_weeks: int, seed: int = 3):
    """Return ``(panel, areas, adjacency)`` drawn from a simple violence process."""
    import numpy as np
    import pandas as pd

    from training.panel import COUNT_COLUMNS

    rng = np.random.default_rng(seed)
    side = math.ceil(math.sqrt(n_areas))
    codes = np.array([f"GEN{i:06d}" for i in range(n_areas)])
    row, col = np.divmod(np.arange(n_areas), side)
    pairs = [(i, j) for i, j in zip(range(n_areas), range(1, n_areas), strict=False)
             if col[i] + 1 < side]  # fmt: skip
    pairs += [(i, i + side) for i in range(n_areas - side)]
    a, b = np.array(pairs).T
    adjacency = pd.DataFrame({"area_code": np.r_[codes[a], codes[b]],
                              "neighbour_code": np.r_[codes[b], codes[a]]})  # fmt: skip
    imd = rng.integers(1, 11, n_areas).astype(float)
    late = rng.poisson(0.3, n_areas)
    areas = pd.DataFrame({
        "area_code": codes, "area_name": codes, "district": (row // 20).astype(str),
        "latitude": 51.0 + row * 0.004, "longitude": -0.5 + col * 0.006,
        "area_km2": rng.uniform(0.1, 3.0, n_areas), "population": rng.integers(1000, 3000, n_areas),
        "imd_decile": imd, "premises": late + rng.poisson(1.0, n_areas), "late_premises": late,
    })  # fmt: skip
    base = rng.lognormal(-1.0, 0.9, n_areas) * (1.6 - imd / 10)
    weeks = pd.date_range("2022-01-03", periods=n_weeks, freq="7D")
    season = 1 + 0.15 * np.sin(2 * np.pi * np.arange(n_weeks) / 52.18)
    counts = np.zeros((n_weeks, n_areas))
    excite = np.zeros(n_areas)
    for w in range(n_weeks):
        rate = base * season[w] + 0.3 * excite
        counts[w] = rng.poisson(rate)
        excite = 0.5 * excite + counts[w]
    cols = {"police_violence": rng.binomial(counts.astype(int), 0.6)}
    cols["ae_assault"] = counts - cols["police_violence"]
    cols["ae_weapon"] = rng.binomial(cols["ae_assault"].astype(int), 0.2)
    cols["police_other"] = rng.poisson(base * 2, (n_weeks, n_areas))
    cols["ambulance_assault"] = rng.binomial(counts.astype(int), 0.3)
    cols["exclusions"] = rng.poisson(0.05 * (11 - imd), (n_weeks, n_areas))
    cols["evictions"] = rng.poisson(0.03 * (11 - imd), (n_weeks, n_areas))
    panel = pd.DataFrame({"area_code": np.tile(codes, n_weeks),
                          "week_start": np.repeat(weeks, n_areas)})  # fmt: skip
    for name in COUNT_COLUMNS:
        panel[name] = cols[name].ravel().astype(float)
    panel["violence"] = counts.ravel()
    return panel, areas, adjacency


def _child(work: Path, max_train_rows: int, threads: int, generated: bool = False) -> dict:
    import pandas as pd

    import training.backtest.run as bt
    from training.config import ModelParams, Params, Paths
    from training.features import build_features
    from training.panel import read_panel_layer

    model = ModelParams(max_train_rows=max_train_rows or None, num_threads=threads)
    params = Params(model=model, paths=Paths(root=work / "pandas", raw=work / "data" / "01_raw"))
    p = params.paths.resolve
    parts: dict[str, float] = {}
    if generated:
        areas_n, weeks_n = (int(v) for v in work.name.split("x"))
        start = time.perf_counter()
        panel, areas, adjacency = generated_layers(areas_n, weeks_n)
        features = build_features(panel, areas, adjacency, params.features)
        parts["layers_s"] = round(time.perf_counter() - start, 1)
    else:
        features = pd.read_parquet(p("features") / "features.parquet")
    # Half the frame's memory: LightGBM bins float32 inputs anyway; the GLM
    # baseline then reads float32-rounded inputs (a benchmark-only change).
    wide = [
        c for c in features.columns if features[c].dtype == "float64" and c not in ("y", "y_ae")
    ]
    for column in wide:  # one column at a time: no second copy of the frame
        features[column] = features[column].astype("float32")
    oracle = None
    if not generated:
        panel, areas, adjacency = read_panel_layer(p("panel"))
        oracle_path = p("raw") / "oracle" / "expected_counts.parquet"
        oracle = pd.read_parquet(oracle_path) if oracle_path.is_file() else None

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                parts[name] = round(parts.get(name, 0.0) + time.perf_counter() - start, 1)

        return wrapper

    bt.fit_folds = timed("refits_s", bt.fit_folds)
    bt.predict_baselines = timed("baselines_s", bt.predict_baselines)
    start = time.perf_counter()
    result = bt.run_backtest(features, panel, areas, adjacency, oracle, params)
    seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 1),
        **parts,
        "feature_rows": len(features),
        "folds": len(result.folds),
        "scored_rows": int((result.predictions["method"] == "model").sum()),
        "acceptance_all": bool(result.summary["acceptance"]["all"]),
    }


def _slope(points: list[tuple[float, float]]) -> float | None:
    if len(points) < 2:
        return None
    (x0, y0), (x1, y1) = points[0], points[-1]
    return round(math.log(y1 / y0) / math.log(x1 / x0), 2)


def _report(report: dict) -> str:
    s = report["settings"]
    lines = [
        "# Backtest at scale (pandas)",
        "",
        f"Each refit samples at most {s['max_train_rows']:,} training rows (seeded); "
        f"{s['threads']} LightGBM thread(s) per fit; default backtest settings otherwise "
        f"(26 scored weeks, a refit every 4 weeks, the model and its ablations, all baselines). "
        f"Peak memory cap {s['mem_cap_gb']:g} GB, time-out {s['timeout_s']:.0f} s. "
        "Seconds: the backtest alone (reading the layers excluded); peak GB: the whole process.",
        "",
        "| areas x weeks | feature rows | backtest s | refits s | baselines s | peak GB | note |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    runs = sorted(report["runs"].values(), key=lambda r: (r["areas"], r["weeks"]))
    for r in runs:
        if "seconds" in r:
            lines.append(
                f"| {r['size']} | {r['feature_rows']:,} | {r['seconds']:.0f} | "
                f"{r.get('refits_s', 0):.0f} | {r.get('baselines_s', 0):.0f} | "
                f"{r['peak_mb'] / 1024:.2f} | {r.get('layers', 'pipeline')} layers; "
                f"load up to {r['load_max']} |"
            )
        else:
            lines.append(f"| {r['size']} | | | | | {r.get('peak_mb', 0) / 1024:.2f} | "
                         f"{r.get('not_run', '')} |")  # fmt: skip
    done = [r for r in runs if "seconds" in r]
    lines += ["", "## How cost grows", ""]
    for axis, fixed in (("areas", "weeks"), ("weeks", "areas")):
        for value in sorted({r[fixed] for r in done}):
            group = sorted((r for r in done if r[fixed] == value), key=lambda r: r[axis])
            if len(group) < 2:
                continue
            t = _slope([(r[axis], r["seconds"]) for r in group])
            m = _slope([(r[axis], r["peak_mb"]) for r in group])
            sizes = ", ".join(r["size"] for r in group)
            lines.append(
                f"- against {axis} ({fixed} = {value}; {sizes}): time slope {t}, "
                f"memory slope {m} (log-log; 1 = linear)"
            )
    lines += ["", *(f"- {note}" for note in report.get("notes", []))]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", default=[], help="AREASxWEEKS")
    parser.add_argument("--root", type=Path, default=Path("/tmp/bench_scale"))
    parser.add_argument("--max-train-rows", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mem-cap-gb", type=float, default=16.0)
    parser.add_argument("--timeout-s", type=float, default=3600.0)
    parser.add_argument("--note", action="append", default=[])
    parser.add_argument("--child", type=Path)
    parser.add_argument(
        "--layers", choices=("pipeline", "generated"), default="pipeline",
        help="pipeline: the layers bench_scale.py built; generated: drawn directly (see above)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.child:
        generated = args.layers == "generated"
        print(json.dumps(_child(args.child, args.max_train_rows, args.threads, generated)))
        return
    out = RESULTS / "backtest_scale.json"
    report = json.loads(out.read_text()) if out.is_file() else {"runs": {}}
    report["settings"] = {
        "max_train_rows": args.max_train_rows,
        "threads": args.threads,
        "mem_cap_gb": args.mem_cap_gb,
        "timeout_s": args.timeout_s,
    }
    report["notes"] = list(dict.fromkeys([*report.get("notes", []), *args.note]))
    for size in args.sizes:
        areas, weeks = (int(v) for v in size.split("x"))
        work = (args.root / size).absolute()
        work.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, __file__, "--child", str(work), "--max-train-rows",
               str(args.max_train_rows), "--threads", str(args.threads),
               "--layers", args.layers]  # fmt: skip
        figures = _measure(cmd, work / "backtest.log", cap_gb=args.mem_cap_gb,
                           timeout_s=args.timeout_s)  # fmt: skip
        report["runs"][size] = {"size": size, "areas": areas, "weeks": weeks,
                                "layers": args.layers, **figures}  # fmt: skip
        print(size, figures, flush=True)
        out.write_text(json.dumps(report, indent=2))
        (RESULTS / "backtest_scale.md").write_text(_report(report))
    out.write_text(json.dumps(report, indent=2))
    (RESULTS / "backtest_scale.md").write_text(_report(report))


if __name__ == "__main__":
    main()
