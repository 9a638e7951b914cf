"""Figures, goals and plot of benchmarks/bench_serving.py (serving.{json,md,png})."""

from __future__ import annotations

import json
import os
import platform
import statistics
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
WORKERS = 2
GOAL_ADDED_MS = 5.0
GOAL_RATIO = 2.0


def medians_over_rounds(rounds: list[dict]) -> list[dict]:
    """Return one row per scenario and target: the median of each metric over rounds."""
    keys = list(dict.fromkeys((r["scenario"], r["target"], r["clients"]) for r in rounds))
    out = []
    for scenario, target, clients in keys:
        same = [r for r in rounds if (r["scenario"], r["target"]) == (scenario, target)]
        out.append(
            {"scenario": scenario, "target": target, "clients": clients, "rounds": len(same)}
            | {m: statistics.median(r[m] for r in same) for m in ("p50_ms", "p99_ms", "rps")}
        )
    return out


def _goals(medians: list[dict]) -> list[dict]:
    def get(scenario: str, target: str, metric: str) -> float:
        return next(
            m[metric] for m in medians if (m["scenario"], m["target"]) == (scenario, target)
        )

    lat = "100 areas + explain"
    added = get(lat, "bentoml_service", "p50_ms") - get(lat, "in_process_predict", "p50_ms")
    over_answer = get(lat, "bentoml_service", "p50_ms") - get(lat, "in_process_answer", "p50_ms")
    thr = "all areas, 16 clients"
    ratio = get(thr, "bentoml_service", "rps") / get(thr, "mlflow_models_serve", "rps")
    thr_x = "all areas + explain, 16 clients"
    ratio_x = get(thr_x, "bentoml_service", "rps") / get(thr_x, "mlflow_models_serve", "rps")
    return [
        {
            "goal": "p50 of /forecast (100 areas + explain, 1 client) over the in-process "
            "predict floor (100 rows)",
            "value": added,
            "limit": f"<= {GOAL_ADDED_MS} ms",
            "met": added <= GOAL_ADDED_MS,
            "note": f"over the in-process answer (no HTTP): {over_answer:.2f} ms",
        },
        {
            "goal": "throughput, all areas, 16 clients: service / mlflow models serve",
            "value": ratio,
            "limit": f">= {GOAL_RATIO}x",
            "met": ratio >= GOAL_RATIO,
            "note": f"with explanations (mlflow cannot explain, it still returns mu only): "
            f"{ratio_x:.1f}x",
        },
    ]


def _plot(medians: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = list(dict.fromkeys(m["target"] for m in medians))
    scenarios = list(dict.fromkeys(m["scenario"] for m in medians))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, metric, label in ((axes[0], "p50_ms", "p50 latency (ms)"), (axes[1], "rps", "req/s")):
        width = 0.8 / len(targets)
        for i, target in enumerate(targets):
            values = [
                next(m[metric] for m in medians if (m["scenario"], m["target"]) == (s, target))
                for s in scenarios
            ]
            ax.bar([x + i * width for x in range(len(scenarios))], values, width, label=target)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(scenarios))], scenarios, fontsize=7)
        ax.set_ylabel(label)
        ax.set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.suptitle("harmcast serving: medians over rounds (loopback, same model)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(args, rounds: list[dict], returns: dict, load: tuple) -> list[dict]:
    """Write serving.{json,md,png} (medians over rounds, goals) and return the goals."""
    import bentoml
    import mlflow

    medians = medians_over_rounds(rounds)
    goals = _goals(medians)
    env = {
        "cpu_count": os.cpu_count(),
        "load_average_before_after": load,
        "python": platform.python_version(),
        "bentoml": bentoml.__version__,
        "mlflow": mlflow.__version__,
        "workers_each": WORKERS,
    }
    out = {"n_areas": args.areas, "rounds": args.rounds, "requests": args.requests, "env": env}
    out |= {"returns": returns, "goals": goals, "medians": medians, "raw": rounds}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "serving.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
    _plot(medians, RESULTS / "serving.png")
    lines = [
        "# Serving benchmark",
        "",
        f"`uv run python benchmarks/bench_serving.py`: {args.areas} areas, same LightGBM model "
        f"(200 trees) on both servers, {WORKERS} workers each, 127.0.0.1; {args.rounds} "
        f"interleaved rounds of {args.requests} requests (x2 with 16 clients), medians shown. "
        f"{os.cpu_count()} CPUs, load average {load[0]:.1f} before / {load[1]:.1f} after.",
        "",
        "What each side returns per area: the service "
        f"{', '.join(returns['bentoml_service'])}; mlflow models serve "
        f"{returns['mlflow_models_serve']}.",
        "",
        "| scenario | target | clients | p50 ms | p99 ms | req/s |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {m['scenario']} | {m['target']} | {m['clients']} | {m['p50_ms']:.2f} | "
        f"{m['p99_ms']:.2f} | {m['rps']:.0f} |"
        for m in medians
    ]
    lines += ["", "## Goals", ""]
    lines += [
        f"- {'PASS' if g['met'] else 'FAIL'}: {g['goal']}: {g['value']:.2f} "
        f"(goal {g['limit']}; {g['note']})"
        for g in goals
    ]
    (RESULTS / "serving.md").write_text("\n".join(lines) + "\n")
    return goals
