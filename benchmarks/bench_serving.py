"""Serving latency and throughput: the BentoML service vs `mlflow models serve`, same model.

One command, ``uv run python benchmarks/bench_serving.py``: builds a synthetic
registry in a temp dir (real LightGBM, sqlite MLflow, an approved version with
its card and snapshot, imported into a temp BentoML store), starts both servers
on 127.0.0.1 with two workers each, and measures, in ``--rounds`` interleaved
rounds of bounded request counts:

- ``in_process_predict``: ``Forecaster.predict`` on the same rows (the model-call
  floor; what `mlflow models serve` computes per request);
- ``in_process_answer``: the service's own work without HTTP (validate the
  request, join the prebuilt JSON fragments);
- ``bentoml_service``: ``POST /forecast`` (expected count, interval, P(>=1),
  rank, percentile, hotspot; with ``explain`` also drivers and contributions);
- ``mlflow_models_serve``: ``POST /invocations`` with the feature rows (``mu`` only).

Figures are medians over rounds; the goals are evaluated on them and written,
with the raw rounds, to benchmarks/results/serving.{json,md,png}.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from bench_serving_report import WORKERS, write_report

REPO = Path(__file__).resolve().parents[1]
TOKEN = "bench-token"
# (name, areas: None = all, explain, clients)
SCENARIOS = (
    ("1 area", 1, False, 1),
    ("100 areas + explain", 100, True, 1),
    ("all areas, 16 clients", None, False, 16),
    ("all areas + explain, 16 clients", None, True, 16),
)


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
        latencies.append(1000 * (time.perf_counter() - start))

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(n)))
    wall = time.perf_counter() - start
    ms = sorted(latencies)
    return {"p50_ms": statistics.median(ms), "p99_ms": ms[int(0.99 * (n - 1))], "rps": n / wall}


def _wait(url: str, process: subprocess.Popen, path: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {process.returncode}")
        try:
            if httpx.get(url + path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url}{path} not ready after {timeout} s")


def _build_city(h, tmp: Path, n_areas: int):
    """Build a governed root (sealed test board, signed approvals, published card) and import it."""
    import mlflow

    from governance.servable import record_snapshot
    from serving.snapshot import build_snapshot, snapshot_sha256, write_snapshot
    from serving.store import import_to_bentoml, resolve_approved
    from tests.governance.governed import make_project

    project = make_project(tmp)
    uri = project.uri
    areas = h.make_areas(n_areas)
    features = h.make_features(areas, n_weeks=20)
    forecaster = h.train_forecaster(features, rounds=200, seed=3)
    version = h.register_version(project, forecaster, tmp=tmp)
    mlflow.MlflowClient(uri, uri).set_registered_model_alias(
        h.MODEL_NAME, "production", str(version)
    )
    approved = resolve_approved(uri, h.MODEL_NAME, cards_root=tmp / "model_cards")
    snap = build_snapshot(features, forecaster, areas, policy_coverage=0.1, model_version=version)
    write_snapshot(snap, tmp / "snapshot")
    # as `harmcast snapshot` records it
    record_snapshot(project.gov, h.MODEL_NAME, version, snapshot_sha256(tmp / "snapshot"))
    tag = import_to_bentoml(
        approved, approved.card_dir, tmp / "snapshot", tracking_uri=uri, store=tmp / "bentoml"
    )
    latest = features[features["origin_week"] == features["origin_week"].max()]
    return uri, version, tag, forecaster, latest[latest["horizon"] == 1].reset_index(drop=True)


def _start(h, command: list[str], env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    port = h.free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", *command, "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    return process, f"http://127.0.0.1:{port}"


def _calls(http, urls, forecaster, index, latest, areas, explain):
    from serving.schemas import ForecastRequest

    subset = latest.iloc[: areas or len(latest)]
    body = {"areas": subset["area_code"].tolist(), "explain": explain}
    rows = subset[list(forecaster.feature_names)].to_dict("split")
    payload = {"dataframe_split": {"columns": rows["columns"], "data": rows["data"]}}
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def post(url, **kwargs):
        return lambda: http.post(url, **kwargs).raise_for_status()

    return {
        "in_process_predict": lambda: forecaster.predict(subset),
        "in_process_answer": lambda: index.answer_json(ForecastRequest.model_validate(body)),
        "bentoml_service": post(f"{urls[0]}/forecast", json=body, headers=headers),
        "mlflow_models_serve": post(f"{urls[1]}/invocations", json=payload),
    }


def _returns(http, urls, latest) -> dict:
    codes = latest["area_code"].tolist()[:1]
    ours = http.post(
        f"{urls[0]}/forecast", json={"areas": codes}, headers={"Authorization": f"Bearer {TOKEN}"}
    ).json()
    return {
        "bentoml_service": sorted(ours["forecasts"][0]) + ["(explain: drivers, contributions)"],
        "mlflow_models_serve": "predictions: [mu] (a bare number per row)",
    }


def _measure(args, h, tmp: Path) -> tuple[list[dict], dict]:
    from serving.query import ForecastIndex
    from serving.store import load_bundle

    uri, version, tag, forecaster, latest = _build_city(h, tmp, args.areas)
    import bentoml

    index = ForecastIndex(load_bundle(Path(bentoml.models.get(tag).path)).snapshot)
    env = {
        **os.environ,
        "BENTOML_HOME": str(tmp / "bentoml"),
        "HARMCAST_BENTO_MODEL": tag,
        "HARMCAST_PLANNER_TOKENS": TOKEN,
        "HARMCAST_TRACKING_URI": uri,
        "HARMCAST_ROOT": str(tmp),
        "MLFLOW_TRACKING_URI": uri,
        "BENTOML_DO_NOT_TRACK": "true",
    }
    bento_cmd = ["bentoml", "serve", "serving.service:HarmcastForecast", "--host", "127.0.0.1"]
    ml_cmd = ["mlflow", "models", "serve", "-m", f"models:/{h.MODEL_NAME}/{version}"]
    ml_cmd += ["--env-manager", "local", "--workers", str(WORKERS), "-h", "127.0.0.1"]
    bento, bento_url = _start(h, bento_cmd, env, tmp / "bentoml.log")
    mlsrv, mlflow_url = _start(h, ml_cmd, env, tmp / "mlflow.log")
    rounds: list[dict] = []
    try:
        _wait(bento_url, bento, "/readyz")
        _wait(mlflow_url, mlsrv, "/ping")
        urls = (bento_url, mlflow_url)
        with httpx.Client(timeout=120, limits=httpx.Limits(max_connections=32)) as http:
            returns = _returns(http, urls, latest)
            for r in range(1, args.rounds + 1):
                for name, areas, explain, clients in SCENARIOS:
                    calls = _calls(http, urls, forecaster, index, latest, areas, explain)
                    n = args.requests if clients == 1 else 2 * args.requests
                    for target, call in calls.items():
                        for _ in range(5):
                            call()  # warm up (connections, caches)
                        row = {"round": r, "scenario": name, "target": target, "clients": clients}
                        row |= _timed(call, n, clients) | {"requests": n}
                        print(
                            {k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}
                        )
                        rounds.append(row)
    finally:
        for process in (bento, mlsrv):
            process.terminate()
            process.wait(timeout=30)
    return rounds, returns


def main() -> None:
    """Run the benchmark and write benchmarks/results/serving.{json,md,png}."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--areas", type=int, default=1000, help="areas in the synthetic city")
    parser.add_argument("--requests", type=int, default=200, help="requests per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="harmcast-bench-") as name:
        tmp = Path(name)
        # bentoml reads BENTOML_HOME lazily, on the first use of its model store
        os.environ["BENTOML_HOME"] = str(tmp / "bentoml")
        rounds, returns = _measure(args, _helpers(), tmp)
    goals = write_report(args, rounds, returns, (load_before, os.getloadavg()[0]))
    for g in goals:
        print(f"{'PASS' if g['met'] else 'FAIL'}: {g['goal']}: {g['value']:.2f} ({g['limit']})")


if __name__ == "__main__":
    main()
