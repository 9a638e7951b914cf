"""A tiny served city: real LightGBM boosters, a real sqlite MLflow registry with
two approved versions (production = v2, previous = v1), published cards, snapshots
and both versions imported into a BentoML store under tmp."""

from __future__ import annotations

import importlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

MODEL_NAME = "harmcast-violence"
FEATURES = [
    "violence_lag1",
    "violence_mean4",
    "police_other_mean13",
    "population",
    "imd_decile",
    "horizon",
]
N_AREAS = 40
N_WEEKS = 30
ORIGIN0 = pd.Timestamp("2024-01-01")  # a Monday
REPO = Path(__file__).resolve().parents[2]
PLANNER_TOKEN = secrets.token_urlsafe(16)
BOARD_TOKEN = secrets.token_urlsafe(16)


@dataclass
class City:
    root: Path
    uri: str
    features: pd.DataFrame
    areas: pd.DataFrame
    forecasters: dict
    snapshots: dict
    bento_tags: dict
    cards_root: Path
    bentoml_home: Path


def make_areas(n_areas: int = N_AREAS) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    codes = [f"SYN{i:05d}" for i in range(1, n_areas + 1)]
    return pd.DataFrame(
        {
            "area_code": codes,
            "area_name": [f"Area {i}" for i in range(1, n_areas + 1)],
            "district": [("North", "South", "East")[i % 3] for i in range(n_areas)],
            "latitude": 53.4 + rng.random(n_areas) / 10,
            "longitude": -2.2 + rng.random(n_areas) / 10,
            "area_km2": 0.5 + rng.random(n_areas),
            "population": rng.integers(1200, 3000, n_areas).astype(float),
            "imd_decile": rng.integers(1, 11, n_areas).astype(float),
            "audit_share_white": rng.random(n_areas),
            "audit_ethnic_band": ["A"] * n_areas,
        }
    )


def make_features(areas: pd.DataFrame, n_weeks: int = N_WEEKS) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    rows = []
    level = rng.gamma(2.0, 1.0, len(areas))
    for w in range(n_weeks):
        origin = ORIGIN0 + pd.Timedelta(weeks=w)
        for h in (1, 2, 3, 4):
            lag = rng.poisson(level)
            frame = pd.DataFrame(
                {
                    "area_code": areas["area_code"],
                    "origin_week": origin,
                    "horizon": h,
                    "target_week": origin + pd.Timedelta(weeks=h),
                    "violence_lag1": lag.astype(float),
                    "violence_mean4": level + rng.normal(0, 0.2, len(areas)),
                    "police_other_mean13": rng.gamma(2.0, 1.0, len(areas)),
                    "population": areas["population"],
                    "imd_decile": areas["imd_decile"],
                }
            )
            mu = np.exp(-0.3 + 0.25 * np.log1p(lag) + 0.3 * np.log1p(level) - 0.02 * h)
            frame["y"] = rng.poisson(mu).astype(float) if w < n_weeks - 1 else np.nan
            frame["y_ae"] = frame["y"] / 2
            rows.append(frame)
    features = pd.concat(rows, ignore_index=True)
    return features[["area_code", "origin_week", "target_week", *FEATURES, "y", "y_ae"]]


def write_boundaries(areas: pd.DataFrame, path: Path) -> Path:
    """Write a square polygon around each area's centroid (GeoJSON)."""
    half = 0.004
    features = [
        {
            "type": "Feature",
            "properties": {"area_code": code},
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [
                        [lon - half, lat - half],
                        [lon + half, lat - half],
                        [lon + half, lat + half],
                        [lon - half, lat + half],
                        [lon - half, lat - half],
                    ]
                ],
            },
        }
        for code, lon, lat in zip(
            areas["area_code"], areas["longitude"], areas["latitude"], strict=True
        )
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def train_forecaster(features: pd.DataFrame, *, rounds: int, seed: int):
    from training.forecaster import Forecaster

    train = features.dropna(subset=["y"])
    booster = lgb.train(
        {
            "objective": "poisson",
            "verbose": -1,
            "num_threads": 1,
            "min_data_in_leaf": 20,
            "learning_rate": 0.1,
            "seed": seed,
            "num_leaves": 7,
        },
        lgb.Dataset(train[FEATURES].to_numpy(np.float32), train["y"], feature_name=FEATURES),
        num_boost_round=rounds,
    )
    return Forecaster.from_booster(booster, 0.2, feature_names=FEATURES)


def register_version(project, forecaster, *, tmp: Path) -> int:
    """Log a booster as `harmcast train` does, then audit, register, approve and publish it
    through the governance path (signed by the demo board's keys)."""
    import mlflow

    from tests.governance.governed import govern

    mlflow.set_tracking_uri(project.uri)
    mlflow.set_registry_uri(project.uri)
    mlflow.set_experiment("harmcast")
    with mlflow.start_run() as run:
        info = mlflow.lightgbm.log_model(
            forecaster.booster, name="model", pip_requirements=["lightgbm==4.7.0"]
        )
        meta_dir = forecaster.save(tmp / f"forecaster-{run.info.run_id}")
        mlflow.log_artifact(str(meta_dir / "model_meta.json"))
    card = {
        "schema_version": 1,
        "intended_use": "weekly area-level violence forecasts for prevention planning",
    }
    return int(govern(project, run.info.run_id, info.model_uri, card=card))


@pytest.fixture(scope="session")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    root = tmp_path_factory.mktemp("served-city")
    home = root / "bentoml"
    # bentoml reads BENTOML_HOME lazily, on the first use of its model store
    os.environ["BENTOML_HOME"] = str(home)
    from governance.servable import record_snapshot
    from serving.briefing.inputs import build_briefing_files
    from serving.snapshot import build_snapshot, snapshot_sha256, write_snapshot
    from serving.store import import_to_bentoml, resolve_approved
    from tests.governance.governed import make_project
    from training.atomic import write_files

    project = make_project(root)
    from governance.signing import write_private_key

    for member, key in project.keys.items():  # for the rollback tests, on copies of the root
        write_private_key(key, root / ".harmcast/keys/test" / f"{member}.key")
    uri = project.uri
    areas = make_areas()
    features = make_features(areas)
    cards_root = root / "model_cards"
    forecasters, snapshots, tags = {}, {}, {}
    for rounds, seed in ((10, 1), (40, 2)):
        forecaster = train_forecaster(features, rounds=rounds, seed=seed)
        version = register_version(project, forecaster, tmp=root)
        forecasters[version] = forecaster
    import mlflow

    client = mlflow.MlflowClient(uri, uri)
    for version in forecasters:
        client.set_registered_model_alias(MODEL_NAME, "production", str(version))
        approved = resolve_approved(uri, MODEL_NAME, cards_root=cards_root)
        snapshot = build_snapshot(
            features, forecasters[version], areas, policy_coverage=0.1, model_version=version
        )
        out = root / f"snapshot-v{version}"
        snapshots[version] = write_snapshot(snapshot, out)
        # v2 has area boundaries (polygons on the map), v1 has none (circles)
        boundaries = write_boundaries(areas, root / "boundaries.geojson") if version == 2 else None
        write_files(
            build_briefing_files(
                snapshots[version], features, forecasters[version], areas, out,
                boundaries=boundaries,
            )
        )  # fmt: skip
        record_snapshot(project.gov, MODEL_NAME, version, snapshot_sha256(out))
        tags[version] = import_to_bentoml(approved, approved.card_dir, out, tracking_uri=uri)
    client.set_registered_model_alias(MODEL_NAME, "previous", "1")
    return City(root, uri, features, areas, forecasters, snapshots, tags, cards_root, home)


@pytest.fixture(scope="session")
def asgi_app(city):
    """The service as one in-process ASGI app (its Prometheus metrics register once)."""
    os.environ.update(
        {
            "HARMCAST_BENTO_MODEL": city.bento_tags[2],
            "HARMCAST_TRACKING_URI": city.uri,
            "HARMCAST_PLANNER_TOKENS": f"{PLANNER_TOKEN},{secrets.token_urlsafe(8)}",
            "HARMCAST_BOARD_TOKENS": BOARD_TOKEN,
        }
    )
    import serving.service

    return importlib.reload(serving.service).HarmcastForecast.to_asgi()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(city: City, tag: str, env: dict[str, str], log: Path) -> Server:
    port = free_port()
    full_env = {
        **os.environ,
        "BENTOML_HOME": str(city.bentoml_home),
        "HARMCAST_BENTO_MODEL": tag,
        "BENTOML_DO_NOT_TRACK": "true",
        **env,
    }
    handle = log.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bentoml",
            "serve",
            "serving.service:HarmcastForecast",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=REPO,
        env=full_env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    return Server(process, f"http://127.0.0.1:{port}", log)


def wait_ready(server: Server, timeout: float = 90) -> bool:
    """True once /readyz answers 200; False when the process exits first."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            if httpx.get(server.url + "/readyz", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False
