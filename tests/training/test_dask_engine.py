"""``dask.enabled``: the step commands run on Dask and write the pandas path's files."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from distributed import get_task_stream
from pydantic import ValidationError
from typer.testing import CliRunner

from training.config import (
    MSG_MEMORY_NOT_A_SIZE,
    MSG_MEMORY_TOO_LOW,
    DaskParams,
    ModelParams,
    load_params,
)
from training.errors import ConfigError
from training.feature_groups import group_columns
from training.features import feature_columns
from training.model import Forecaster, fit_forecaster
from training.scale import MSG_NO_SCHEDULER, dask_client, fit_forecaster_dask, shared_client
from training.scale.cluster import local_workers
from training.scale.layers import train_on_dask, write_frame

runner = CliRunner()
MODEL = "model: {num_boost_round: 20, num_threads: 1}\n"
DASK = ("dask: {enabled: true, n_workers: 1, threads_per_worker: 2, processes: false, "
        "partition_areas: 25, partition_rows: 3000}\n")  # fmt: skip
LINKED = ("records.parquet", "areas.parquet", "adjacency.parquet")
SORT = {"records.parquet": ["source", "record_id"], "areas.parquet": ["area_code"],
        "adjacency.parquet": ["area_code", "neighbour_code"],
        "panel.parquet": ["area_code", "week_start"],
        "features.parquet": ["area_code", "origin_week", "horizon"]}  # fmt: skip


def _invoke(*args: str):
    from harmcast.cli import app

    return runner.invoke(app, list(args))


def _project(root: Path, synthetic_city: Path, params: str) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "data" / "01_raw").symlink_to(synthetic_city)
    (root / "params.yaml").write_text(params)
    return root


def _read(path: Path, name: str) -> pd.DataFrame:
    assert path.is_file(), f"{path} is not a single file"
    frame = pd.read_parquet(path)
    return frame.sort_values(SORT[name], kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def roots(synthetic_city: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The same city through the pandas commands and through the Dask-enabled ones."""
    out, outputs = {}, {}
    for engine, params in (("pandas", MODEL), ("dask", MODEL + DASK)):
        root = _project(tmp_path_factory.mktemp(engine), synthetic_city, params)
        for step in ("ingest", "panel", "features", "train"):
            result = _invoke(step, "--root", str(root))
            assert result.exit_code == 0, result.output
            outputs[engine, step] = result.output
        out[engine] = root
    return {**out, "outputs": outputs}


@pytest.mark.parametrize("step", ["ingest", "panel", "features", "train"])
def test_each_command_says_which_engine_ran(roots, step):
    assert "engine: pandas" in roots["outputs"]["pandas", step]
    dask_output = " ".join(roots["outputs"]["dask", step].split())
    assert "engine: dask (inproc://" in dask_output and "1 workers, 2 threads" in dask_output


def test_linked_layer_equals_pandas(roots):
    for name in LINKED:
        got = _read(roots["dask"] / "data/02_linked" / name, name)
        expected = _read(roots["pandas"] / "data/02_linked" / name, name)
        pd.testing.assert_frame_equal(got, expected)
    for name in ("quarantine.csv", "linkage_report.json", "linkage_report.md"):
        got = (roots["dask"] / "data/02_linked" / name).read_bytes()
        assert got == (roots["pandas"] / "data/02_linked" / name).read_bytes(), name


def test_panel_and_features_equal_pandas(roots):
    """Equal frames, except that the Dask path leaves the near-repeat group out.

    Near-repeat comes from the linked day-grain records, which the Dask
    features step does not read (docs/scale.md).
    """
    layers = [("03_panel", name) for name in ("panel.parquet", *LINKED[1:])]
    for layer, name in [*layers, ("04_features", "features.parquet")]:
        got = _read(roots["dask"] / "data" / layer / name, name)
        expected = _read(roots["pandas"] / "data" / layer / name, name)
        if name == "features.parquet":
            near = group_columns(list(expected.columns), "near_repeat")
            assert near and not group_columns(list(got.columns), "near_repeat")
            expected = expected.drop(columns=near)
        assert len(got) > 0
        pd.testing.assert_frame_equal(got, expected)


def test_train_on_dask_writes_and_logs_a_model_like_pandas(roots):
    models = roots["dask"] / "data/05_models"
    forecaster = Forecaster.load(models)
    assert forecaster.booster.num_trees() == 20
    meta = json.loads((models / "model_meta.json").read_text())
    assert meta["run_id"] and meta["model_uri"].startswith("models:/m-")
    assert (roots["dask"] / "mlruns" / "mlflow.db").is_file()
    features = pd.read_parquet(roots["pandas"] / "data/04_features/features.parquet")
    local = Forecaster.load(roots["pandas"] / "data/05_models")
    assert np.corrcoef(local.predict_mu(features), forecaster.predict_mu(features))[0, 1] > 0.9


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("command", [["ingest"], ["run", "--no-synth", "--no-serve"]])
def test_unreachable_scheduler_fails_clearly_naming_it(synthetic_city, tmp_path, command):
    address = f"tcp://127.0.0.1:{_closed_port()}"
    params = f"dask: {{enabled: true, scheduler_address: '{address}', connect_timeout_s: 1}}\n"
    root = _project(tmp_path, synthetic_city, params)
    result = _invoke(*command, "--root", str(root))
    assert result.exit_code == 1
    output = "".join(result.output.split())
    prefix = MSG_NO_SCHEDULER.split("({error})")[0].format(address=address)
    assert "".join(prefix.split()) in output
    assert "Traceback" not in result.output
    assert not (root / "data" / "02_linked").exists()


def test_nested_blocks_share_one_client():
    params = DaskParams(n_workers=1, threads_per_worker=2, processes=False)
    with shared_client(params) as outer:
        with shared_client(params.model_copy(update={"n_workers": 2})) as inner:
            assert inner is outer
        assert outer.status == "running"
    assert outer.status == "closed"


def test_write_frame_gives_one_file_whatever_the_partitions(tmp_path):
    frame = pd.DataFrame({"area_code": [None, None, "A", "B", "C", "D"],
                          "value": np.arange(6, dtype="float64")})  # fmt: skip
    parts = dd.from_pandas(frame, npartitions=3, sort=False)
    empty_first = parts.loc[parts["value"] >= 2]
    for name, lazy, expected in (("all", parts, frame), ("filtered", empty_first, frame.iloc[2:])):
        path = write_frame(lazy, tmp_path / f"{name}.parquet")
        assert path.is_file() and not path.with_name(path.name + ".tmp").exists()
        pd.testing.assert_frame_equal(pd.read_parquet(path), expected.reset_index(drop=True),
                                      check_dtype=False)  # fmt: skip


def _roots_split_on_horizon(forecaster: Forecaster) -> bool:
    """Whether every tree of the booster splits on ``horizon`` first."""
    index = list(forecaster.feature_names).index("horizon")
    trees = forecaster.booster.dump_model()["tree_info"]
    return all(t["tree_structure"].get("split_feature") == index for t in trees)


def test_dask_training_splits_on_horizon_first_as_pandas_does(roots):
    features = pd.read_parquet(roots["pandas"] / "data/04_features/features.parquet")
    columns = feature_columns(features)
    # no bagging: each worker would draw its own bag
    model = ModelParams(num_boost_round=15, bagging_fraction=1.0, bagging_freq=0,
                        num_threads=1, split_by_horizon=True)  # fmt: skip
    local = fit_forecaster(features, columns, model)
    assert _roots_split_on_horizon(local)
    # two workers: LightGBM refuses forced splits data-parallel, so one of them fits
    params = DaskParams(n_workers=2, threads_per_worker=2, processes=False)
    with dask_client(params) as client:
        spread = fit_forecaster_dask(dd.from_pandas(features, npartitions=4), columns, model,
                                     client=client)  # fmt: skip
    assert spread.booster.num_trees() == 15 and _roots_split_on_horizon(spread)
    mu_local, mu_dask = local.predict_mu(features), spread.predict_mu(features)
    np.testing.assert_allclose(mu_dask, mu_local, rtol=1e-4)
    unsplit = model.model_copy(update={"split_by_horizon": False})
    with dask_client(params) as client:
        shared = fit_forecaster_dask(dd.from_pandas(features, npartitions=4), columns, unsplit,
                                     client=client)  # fmt: skip
    assert not _roots_split_on_horizon(shared)


def test_capped_training_samples_as_read_and_shuffles_nothing(roots):
    params = load_params(roots["dask"] / "params.yaml", root=roots["dask"])
    model = params.model.model_copy(update={"max_train_rows": 2000, "num_boost_round": 5})
    params = params.model_copy(update={"model": model})
    with shared_client(params.dask) as client, get_task_stream(client) as stream:
        step = train_on_dask(params)
    keys = {str(task["key"]) for task in stream.data}
    assert keys and not [k for k in keys if "shuffle" in k], sorted(keys)
    assert step.forecaster.booster.num_trees() == 5 and _roots_split_on_horizon(step.forecaster)


def test_default_local_cluster_fits_the_machine():
    cores = os.cpu_count() or 1
    for params in (DaskParams(), load_params(Path(__file__).parents[2] / "params.yaml").dask):
        workers = local_workers(params)
        assert workers >= 1
        assert workers * params.threads_per_worker <= max(cores, params.threads_per_worker)
    with dask_client(DaskParams(processes=False)) as client:
        workers = client.scheduler_info(n_workers=-1)["workers"].values()
        assert sum(int(w["nthreads"]) for w in workers) <= max(cores, 2)


@pytest.mark.parametrize("limit", ["512MiB", "1000MB", "0"])
def test_worker_memory_below_one_gib_is_refused_naming_the_field(limit, tmp_path):
    with pytest.raises(ValidationError) as caught:
        DaskParams(memory_limit=limit)
    assert MSG_MEMORY_TOO_LOW.format(value=limit) in str(caught.value)
    (tmp_path / "params.yaml").write_text(f"dask: {{memory_limit: '{limit}'}}\n")
    with pytest.raises(ConfigError, match="dask.memory_limit"):
        load_params(tmp_path / "params.yaml")
    result = _invoke("ingest", "--root", str(tmp_path))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "".join(MSG_MEMORY_TOO_LOW.format(value=limit).split()) in "".join(result.output.split())


def test_worker_memory_auto_or_at_least_one_gib_is_accepted():
    for limit in ("auto", "1GiB", "4GB", "16 GiB"):
        assert DaskParams(memory_limit=limit).memory_limit == limit
    with pytest.raises(ValidationError) as caught:
        DaskParams(memory_limit="plenty")
    assert MSG_MEMORY_NOT_A_SIZE.format(value="plenty") in str(caught.value)


def test_dask_kwargs_are_lgb_params_under_their_sklearn_names():
    from training.model import lgb_params
    from training.scale.dask_train import PER_WORKER, SKLEARN_NAMES, dask_lgb_kwargs

    params = ModelParams(learning_rate=0.05, num_leaves=7, min_data_in_leaf=11, seed=3)
    kwargs = dask_lgb_kwargs(params, num_boost_round=9)
    native = lgb_params(params)
    assert kwargs.pop("n_estimators") == 9
    assert kwargs == {SKLEARN_NAMES.get(k, k): v for k, v in native.items() if k not in PER_WORKER}
    assert kwargs["min_child_samples"] == 11 and kwargs["random_state"] == 3
    assert "num_threads" not in kwargs
    assert dask_lgb_kwargs(params)["n_estimators"] == params.num_boost_round
