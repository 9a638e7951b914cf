"""Tables, growth slopes and plot of benchmarks/bench_scale.py (scale.{json,md,png})."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
STEPS = ("link", "panel", "features", "train")
ENGINES = ("pandas", "dask")
AXES = {"areas": ("weeks", 52), "weeks": ("areas", 5000)}  # grow one, hold the other at


def _machine() -> str:
    import psutil

    cpu = platform.processor() or platform.machine()
    gb = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} CPUs ({cpu}), {gb:.0f} GB RAM, Python {platform.python_version()}"


def _points(runs: list[dict], axis: str, step: str, engine: str) -> list[tuple[int, dict]]:
    held, value = AXES[axis]
    return [
        (r[axis], r[step][engine])
        for r in runs
        if r[held] == value and "seconds" in r.get(step, {}).get(engine, {})
    ]


def growth_slopes(runs: list[dict]) -> dict:
    """Log-log slopes of seconds and peak MB against areas (weeks held) and weeks (areas held).

    A slope of 1 is linear growth, 0 flat; at least two sizes are needed.
    """
    import numpy as np

    slopes: dict = {}
    for step in STEPS:
        for engine in ENGINES:
            entry = {}
            for axis in AXES:
                pts = _points(runs, axis, step, engine)
                if len(pts) < 2:
                    continue
                x = np.log([v for v, _ in pts])
                for key in ("seconds", "peak_mb"):
                    y = np.log([max(m[key], 1e-3) for _, m in pts])
                    entry[f"{key}_vs_{axis}"] = round(float(np.polyfit(x, y, 1)[0]), 2)
                entry[f"sizes_vs_{axis}"] = [v for v, _ in pts]
            if entry:
                slopes[f"{step}/{engine}"] = entry
    return slopes


def _cell(figures: dict, key: str, scale: float = 1.0, digits: int = 1) -> str:
    if key in figures:
        borrowed = key == "seconds" and figures.get("inputs_from_other_engine")
        return f"{figures[key] / scale:,.{digits}f}" + (
            " (reads the other engine's layer)" if borrowed else ""
        )
    if "not_run" in figures:
        return f"not run: {figures['not_run']}" if key == "seconds" else "-"
    return "not run: not measured in this run" if key == "seconds" else "-"


def _table(runs: list[dict]) -> list[str]:
    lines = [
        "| areas x weeks | step | pandas s | Dask s | Dask start s | pandas peak GB "
        "| Dask peak GB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        for step in STEPS:
            pan, dsk = (run.get(step, {}).get(e, {}) for e in ENGINES)
            lines.append(
                f"| {run['size']} | {step} | {_cell(pan, 'seconds')} | "
                f"{_cell(dsk, 'seconds')} | {_cell(dsk, 'cluster_start_s')} | "
                f"{_cell(pan, 'peak_mb', 1024, 2)} | {_cell(dsk, 'peak_mb', 1024, 2)} |"
            )
    return lines


def _sizes(runs: list[dict]) -> list[str]:
    lines = [
        "| areas x weeks | synthetic preset | raw records | panel rows | feature rows | synth s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for run in runs:
        synth = run.get("synth", {})
        rows = {
            s: next(
                (
                    run[s][e]["rows_out"]
                    for e in ENGINES
                    if run.get(s, {}).get(e, {}).get("rows_out")
                ),
                None,
            )
            for s in ("panel", "features")
        }
        fmt = [f"{v:,}" if v else "-" for v in (synth.get("raw_records"), *rows.values())]
        lines.append(
            f"| {run['size']} | {synth.get('preset', '-')} | {' | '.join(fmt)} | "
            f"{synth.get('seconds', '-')} |"
        )
    return lines


def _slope_table(slopes: dict) -> list[str]:
    held = {a: f"{h} = {v:,}" for a, (h, v) in AXES.items()}
    lines = [
        f"| step / engine | time vs areas ({held['areas']}) | time vs weeks "
        f"({held['weeks']}) | memory vs areas | memory vs weeks |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, fit in slopes.items():
        vals = [
            fit.get(k, "-")
            for k in (
                "seconds_vs_areas",
                "seconds_vs_weeks",
                "peak_mb_vs_areas",
                "peak_mb_vs_weeks",
            )
        ]
        lines.append(f"| {name} | " + " | ".join(str(v) for v in vals) + " |")
    return lines


def _load(runs: list[dict]) -> str:
    loads = [
        m["load_max"] for r in runs for s in STEPS for m in r.get(s, {}).values() if "load_max" in m
    ]
    if not loads:
        return "no load figures recorded"
    return f"highest 1-minute load average seen during a step: {min(loads)} to {max(loads)}"


def markdown(report: dict) -> str:
    """Return scale.md from the report."""
    runs, s = report["runs"], report["settings"]
    cap = f"{s['max_train_rows']:,} rows sampled (seeded)" if s["max_train_rows"] else "all rows"
    lines = [
        "# Scale benchmark: pandas vs Dask on one machine",
        "",
        f"Machine: {report['machine']}; shared with other jobs ({_load(runs)}).",
        f"Dask: LocalCluster of {s['workers']} worker processes, 2 threads each for link, "
        "panel and features and 1 each for train; the memory limit per worker is in the notes.",
        f"Training: {s['rounds']} boosting rounds on {cap} of the observed feature rows, one "
        "LightGBM thread per fit on both engines (pandas: one booster, 1 thread; Dask: "
        "`lightgbm.dask`, on one worker when the trees are forced to split on horizon "
        "first, as by default, else over the workers, 1 thread each).",
        "",
        "Each step runs in its own process as its command runs it: it reads the previous "
        "layer from disk, computes, and writes its layer (train: fits and saves the model, "
        "no MLflow). **Seconds** include that reading and writing; they exclude starting "
        "Python and importing the libraries, and for Dask starting the LocalCluster and "
        "importing the library on its workers (**Dask start s**). **Peak GB** is the largest "
        "summed resident memory of the process and its Dask workers, sampled every 0.2 s "
        "(it includes each process's imported libraries, about 0.3 GB per process). "
        f"A step passing {s['mem_cap_gb']:g} GB or still running after "
        f"{s.get('timeout_s', 900):.0f} s was stopped (its peak GB is then the peak until "
        "the stop).",
        "",
        *_table(runs),
        "",
        "## Sizes",
        "",
        *_sizes(runs),
        "",
        "## How cost grows",
        "",
        "Log-log slope of step seconds and of peak memory: against areas with weeks held, "
        "and against weeks with areas held (1 = linear, 0 = flat). Peak memory includes a "
        "fixed floor (the imported libraries, the Dask workers), which flattens its slopes "
        "at small sizes. A slope needs the step to have run at two sizes or more on that axis.",
        "",
        *_slope_table(report["slopes"]),
        "",
    ]
    if report.get("notes"):
        lines += ["## Notes", "", *[f"- {n}" for n in report["notes"]], ""]
    if report.get("commentary"):
        lines += [report["commentary"].strip(), ""]
    return "\n".join(lines)


def _plot_stopped(axes, col: int, runs: list[dict], axis: str, colours: dict) -> None:
    """Mark steps stopped by the time or memory limit: their figures are lower bounds."""
    held, value = AXES[axis]
    for run in runs:
        for step in STEPS:
            for engine, marker in zip(ENGINES, ("x", "+"), strict=True):
                m = run.get(step, {}).get(engine, {})
                if run[held] != value or not str(m.get("not_run", "")).startswith("stopped"):
                    continue
                for row, key, scale in ((0, "wall_s", 1), (1, "peak_mb", 1024)):
                    axes[row][col].plot(
                        run[axis],
                        m[key] / scale,
                        marker,
                        color=colours[step],
                        markersize=10,
                        label=f"{step} ({engine}) stopped",
                    )


def plot(report: dict, path: Path) -> None:
    """Write the 2 x 2 plot: seconds and peak memory, against areas and against weeks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    colours = dict(zip(STEPS, ("tab:blue", "tab:orange", "tab:green", "tab:red"), strict=True))
    for col, axis in enumerate(AXES):
        for step in STEPS:
            for engine, style in zip(ENGINES, ("-o", "--s"), strict=True):
                pts = _points(report["runs"], axis, step, engine)
                for row, key, scale in ((0, "seconds", 1), (1, "peak_mb", 1024)):
                    if pts:
                        axes[row][col].plot(
                            [v for v, _ in pts],
                            [m[key] / scale for _, m in pts],
                            style,
                            color=colours[step],
                            label=f"{step} ({engine})",
                        )
        _plot_stopped(axes, col, report["runs"], axis, colours)
        held, value = AXES[axis]
        for row, label in ((0, "seconds"), (1, "peak memory (GB)")):
            axes[row][col].set(
                xscale="log", yscale="log", ylabel=label, xlabel=f"{axis} ({held} = {value:,})"
            )
            axes[row][col].grid(True, which="both", alpha=0.3)
    if axes[0][0].get_legend_handles_labels()[0]:
        axes[0][0].legend(fontsize=7, ncol=2)
    fig.suptitle(
        "pandas (solid) vs Dask LocalCluster (dashed), one 2-core machine; "
        "x / +: stopped (time or memory limit), a lower bound"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(report: dict, out: Path = RESULTS) -> None:
    """Fill in machine and slopes; write scale.json, scale.md and scale.png into ``out``."""
    report["machine"] = _machine()
    report["slopes"] = growth_slopes(report["runs"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / "scale.md").write_text(markdown(report))
    plot(report, out / "scale.png")
