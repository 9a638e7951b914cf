"""Serving latency and throughput: in-process floor vs BentoML service vs `mlflow models serve`.

Builds a synthetic registry (real LightGBM, sqlite MLflow, approved version with
card and snapshot) in a temp dir, starts both servers on loopback, and measures
1, 100 and all areas at 1 and 16 concurrent clients. Writes
benchmarks/results/serving.json and serving.md.

    uv run python benchmarks/bench_serving.py --areas 1000 --requests 200
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
TOKEN = "bench-token"


def _helpers():
    spec = importlib.util.spec_from_file_location(
        "serving_city", REPO / "tests/serving/conftest.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["serving_city"] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def _timed(call, n: int, clients: int) -> dict:
    latencies: list[float] = []

    def one(_: int) -> None:
        start = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(n)))
    wall = time.perf_counter() - start
    ms = sorted(x * 1000 for x in latencies)
    return {
        "p50_ms": statistics.median(ms),
        "p99_ms": ms[int(0.99 * (len(ms) - 1))],
        "throughput_rps": n / wall,
        "requests": n,
    }


def _wait(url: str, process: subprocess.Popen, path: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url + path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--areas", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    h = _helpers()
    tmp = Path(tempfile.mkdtemp(prefix="harmcast-bench-"))
    os.environ["BENTOML_HOME"] = str(tmp / "bentoml")
    import mlflow

    from serving.snapshot import build_snapshot, write_snapshot
    from serving.store import import_to_bentoml, resolve_approved

    uri = f"sqlite:///{tmp}/mlflow.db"
    areas = h.make_areas(args.areas)
    features = h.make_features(areas, n_weeks=20)
    forecaster = h.train_forecaster(features, rounds=200, seed=3)
    version = h.register_version(uri, forecaster, cards_root=tmp / "cards", tmp=tmp)
    client = mlflow.MlflowClient(uri, uri)
    client.set_registered_model_alias(h.MODEL_NAME, "production", str(version))
    approved = resolve_approved(uri, h.MODEL_NAME, cards_root=tmp / "cards")
    snap = build_snapshot(features, forecaster, areas, policy_coverage=0.1, model_version=version)
    write_snapshot(snap, tmp / "snapshot")
    tag = import_to_bentoml(approved, approved.card_dir, tmp / "snapshot", tracking_uri=uri)
    latest = features[(features["origin_week"] == features["origin_week"].max())]
    latest = latest[latest["horizon"] == 1].reset_index(drop=True)
    codes = latest["area_code"].tolist()

    env = {
        **os.environ,
        "HARMCAST_BENTO_MODEL": tag,
        "HARMCAST_PLANNER_TOKENS": TOKEN,
        "MLFLOW_TRACKING_URI": uri,
        "BENTOML_DO_NOT_TRACK": "true",
    }
    bento_port, mlflow_port = h.free_port(), h.free_port()
    bento = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bentoml",
            "serve",
            "serving.service:HarmcastForecast",
            "--host",
            "127.0.0.1",
            "--port",
            str(bento_port),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    mlsrv = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            f"models:/{h.MODEL_NAME}/{version}",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(mlflow_port),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    results = []
    try:
        bento_url, mlflow_url = f"http://127.0.0.1:{bento_port}", f"http://127.0.0.1:{mlflow_port}"
        _wait(bento_url, bento, "/readyz")
        _wait(mlflow_url, mlsrv, "/ping")
        http = httpx.Client(timeout=60, limits=httpx.Limits(max_connections=32))
        headers = {"Authorization": f"Bearer {TOKEN}"}
        for k in (1, 100, len(codes)):
            subset = latest.iloc[:k]
            body = {"areas": codes[:k], "explain": True}
            payload = {"dataframe_split": subset[list(forecaster.feature_names)].to_dict("split")}
            payload["dataframe_split"].pop("index")
            calls = {
                "in_process_predict": lambda s=subset: forecaster.predict(s),
                "bentoml_service": lambda b=body: http.post(
                    f"{bento_url}/forecast", json=b, headers=headers
                ).raise_for_status(),
                "mlflow_models_serve": lambda p=payload: http.post(
                    f"{mlflow_url}/invocations", json=p
                ).raise_for_status(),
            }
            for name, call in calls.items():
                for _ in range(5):
                    call()  # warm up
                for clients in (1, 16):
                    n = args.requests if clients == 1 else 2 * args.requests
                    row = {
                        "target": name,
                        "areas": k,
                        "clients": clients,
                        **_timed(call, n, clients),
                    }
                    print(row)
                    results.append(row)
    finally:
        for process in (bento, mlsrv):
            process.terminate()
            process.wait(timeout=30)
    _write(results, args)


def _write(results: list[dict], args: argparse.Namespace) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)

    def find(target, areas, clients):
        return next(
            r
            for r in results
            if (r["target"], r["areas"], r["clients"]) == (target, areas, clients)
        )

    extra = find("bentoml_service", 100, 1)["p50_ms"] - find("in_process_predict", 100, 1)["p50_ms"]
    all_areas = max(r["areas"] for r in results)
    ratio = (
        find("bentoml_service", all_areas, 16)["throughput_rps"]
        / find("mlflow_models_serve", all_areas, 16)["throughput_rps"]
    )
    goals = {
        "added_p50_ms_100_areas_explain": extra,
        "goal_added_p50_ms": 5.0,
        "throughput_ratio_all_areas_16_clients": ratio,
        "goal_ratio": 2.0,
        "met": bool(extra <= 5.0 and ratio >= 2.0),
    }
    out = {"n_areas": args.areas, "cpu_count": os.cpu_count(), "results": results, "goals": goals}
    (RESULTS / "serving.json").write_text(json.dumps(out, indent=2) + "\n")
    lines = [
        "# Serving benchmark",
        "",
        f"{args.areas} areas, {os.cpu_count()} CPUs, loopback.",
        "",
        "| target | areas | clients | p50 ms | p99 ms | req/s |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['target']} | {r['areas']} | {r['clients']} | {r['p50_ms']:.2f} | "
        f"{r['p99_ms']:.2f} | {r['throughput_rps']:.0f} |"
        for r in results
    ]
    lines += [
        "",
        f"- added p50 over the in-process floor, 100 areas with explanations: "
        f"{extra:.2f} ms (goal <= 5 ms)",
        f"- throughput vs mlflow models serve, all areas, 16 clients: {ratio:.1f}x (goal >= 2x)",
        "",
    ]
    (RESULTS / "serving.md").write_text("\n".join(lines))
    print(json.dumps(goals, indent=2), np.round(ratio, 2))


if __name__ == "__main__":
    main()
