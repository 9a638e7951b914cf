"""The Dask path gives the pandas path's results on the tiny synthetic city."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from rawfiles import police_uk_sample
from typer.testing import CliRunner

from harmcast.cli import app
from training.config import DaskParams, ModelParams, Params
from training.errors import ConfigError, LinkageError, SchemaError
from training.features import build_features, feature_columns
from training.link.linker import RawLayout, link_sources
from training.model import NO_TARGET, Forecaster, fit_forecaster
from training.panel import MSG_UNKNOWN_AREAS, build_panel
from training.scale import (
    MSG_NO_SCHEDULER,
    area_blocks,
    build_features_dask,
    build_panel_dask,
    dask_client,
    fit_forecaster_dask,
    link_sources_dask,
)
from training.scale.dask_features import halo_blocks

# 60 areas in blocks of 17: four blocks, the last one short.
DASK = DaskParams(n_workers=2, threads_per_worker=2, processes=False, partition_areas=17,
                  partition_rows=3000)  # fmt: skip
PARAMS = Params()
FEATURE_KEYS = ["horizon", "origin_week", "area_code"]


@pytest.fixture(scope="module")
def client():
    with dask_client(DASK) as connected:
        yield connected


@pytest.fixture(scope="module")
def pandas_path(synthetic_city: Path):
    linked = link_sources(synthetic_city, PARAMS.sources, PARAMS.link)
    panel = build_panel(linked.records, linked.areas)
    features = build_features(panel, linked.areas, linked.adjacency, PARAMS.features)
    return linked, panel, features


@pytest.fixture(scope="module")
def dask_path(client, synthetic_city: Path):
    linked = link_sources_dask(synthetic_city, PARAMS.sources, PARAMS.link, params=DASK)
    panel = build_panel_dask(linked.records, linked.areas, params=DASK).persist()
    features = build_features_dask(panel, linked.areas, linked.adjacency, PARAMS.features,
                                   dask_params=DASK).persist()  # fmt: skip
    return linked, panel, features


def test_linking_equals_pandas(pandas_path, dask_path):
    expected, got = pandas_path[0], dask_path[0].to_pandas()
    assert dask_path[0].records.npartitions > 1
    pd.testing.assert_frame_equal(got.records, expected.records)
    pd.testing.assert_frame_equal(got.quarantine, expected.quarantine)
    pd.testing.assert_frame_equal(got.areas, expected.areas)
    pd.testing.assert_frame_equal(got.adjacency, expected.adjacency)
    assert got.report == expected.report
    assert got.reference == expected.reference


def test_linking_a_police_download_without_areas_file_equals_pandas(client):
    # the area reference is derived from the police records, which then reach the client
    folder = police_uk_sample()
    layout = RawLayout(police=folder)
    expected = link_sources(folder, PARAMS.sources, PARAMS.link, layout=layout)
    small = DASK.model_copy(update={"partition_rows": 500})
    linked = link_sources_dask(folder, PARAMS.sources, PARAMS.link, params=small, layout=layout)
    assert linked.records.npartitions >= 4
    got = linked.to_pandas()
    assert "derived" in got.reference
    pd.testing.assert_frame_equal(got.records, expected.records)
    pd.testing.assert_frame_equal(got.areas, expected.areas)
    pd.testing.assert_frame_equal(got.quarantine, expected.quarantine)
    assert got.report == expected.report


def test_panel_equals_pandas_and_partitions_are_area_blocks(pandas_path, dask_path):
    panel = dask_path[1]
    blocks = area_blocks(dask_path[0].areas, DASK)
    assert panel.npartitions == 4
    for number in range(panel.npartitions):
        codes = set(panel.get_partition(number).compute()["area_code"])
        assert codes == set(blocks.index[blocks == number])
    got = panel.compute().sort_values(["area_code", "week_start"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, pandas_path[1])


def test_features_equal_pandas(pandas_path, dask_path):
    expected = pandas_path[2].sort_values(FEATURE_KEYS).reset_index(drop=True)
    got = dask_path[2].compute().sort_values(FEATURE_KEYS).reset_index(drop=True)
    assert any(c.startswith("nb_") for c in got.columns)
    pd.testing.assert_frame_equal(got, expected)


def test_halo_sends_each_area_to_its_neighbours_blocks():
    blocks = pd.Series([0, 0, 1, 1], index=pd.Index(["A", "B", "C", "D"], name="area_code"))
    adjacency = pd.DataFrame({"area_code": ["B", "C", "A", "B"],
                              "neighbour_code": ["C", "B", "B", "A"]})  # fmt: skip
    need = halo_blocks(adjacency, blocks)
    pairs = set(zip(need["area_code"], need["_block"], strict=True))
    assert pairs == {("A", 0), ("B", 0), ("C", 1), ("D", 1), ("C", 0), ("B", 1)}


def test_dask_params_need_two_threads_per_worker():
    with pytest.raises(ValidationError, match="threads_per_worker"):
        DaskParams(threads_per_worker=1)
    assert Params().dask.enabled is False


def test_unknown_area_is_refused_as_in_pandas(client, dask_path):
    linked = dask_path[0]
    areas = linked.areas.loc[linked.areas["area_code"] != "SYN00001"]
    n = int((linked.records["area_code"] == "SYN00001").sum().compute())
    with pytest.raises(LinkageError) as caught:
        build_panel_dask(linked.records, areas, params=DASK)
    assert str(caught.value) == MSG_UNKNOWN_AREAS.format(n=n, example="SYN00001")


def test_lightgbm_dask_forecaster_matches_pandas(client, pandas_path, dask_path, tmp_path):
    features = pandas_path[2]
    columns = feature_columns(features)
    # no bagging: each Dask worker would draw its own bag, so the fits would differ by design
    model = ModelParams(
        num_boost_round=60, max_train_rows=None, bagging_fraction=1.0, bagging_freq=0
    )
    # one OpenMP thread for the local fit: two on a busy two-core machine crawl
    local = fit_forecaster(features, columns, model.model_copy(update={"num_threads": 1}))
    spread = fit_forecaster_dask(dask_path[2], columns, model, client=client)
    assert spread.feature_names == tuple(columns)
    assert spread.booster.num_trees() == 60
    assert 0 < spread.dispersion <= 10
    mu_local, mu_dask = local.predict_mu(features), spread.predict_mu(features)
    assert np.corrcoef(mu_local, mu_dask)[0, 1] > 0.95
    assert abs(mu_dask.mean() / mu_local.mean() - 1) < 0.05
    reloaded = Forecaster.load(spread.save(tmp_path / "model"))
    out = reloaded.predict(features.head(50))
    assert list(out.columns) == ["mu", "q_lo", "q_hi", "p_any"]
    np.testing.assert_allclose(out["mu"], mu_dask[:50], rtol=1e-6)
    assert (out["q_lo"] <= out["q_hi"]).all()


def test_training_without_targets_is_refused(client, dask_path):
    features = dask_path[2]
    unobserved = features.assign(y=np.nan)
    columns = feature_columns(features._meta)
    with pytest.raises(SchemaError, match=NO_TARGET):
        fit_forecaster_dask(unobserved, columns, ModelParams(num_boost_round=5), client=client)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_scheduler_is_a_clear_error():
    address = f"tcp://127.0.0.1:{_free_port()}"
    params = DaskParams(scheduler_address=address, connect_timeout_s=1)
    with pytest.raises(ConfigError) as caught, dask_client(params):
        pass
    assert str(caught.value).startswith(MSG_NO_SCHEDULER.split("{error}")[0].format(
        address=address))  # fmt: skip


def test_cli_rejects_unknown_step_without_traceback(tmp_path):
    result = CliRunner().invoke(app, ["scale", "run", "--root", str(tmp_path), "--until", "nope"])
    assert result.exit_code == 1
    assert "--until 'nope'" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_cli_runs_the_pipeline_on_a_local_cluster(synthetic_city, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "01_raw").symlink_to(synthetic_city)
    (tmp_path / "params.yaml").write_text(
        "dask: {n_workers: 1, threads_per_worker: 2, processes: false, partition_areas: 25}\n"
        "model: {num_boost_round: 20}\n"
    )
    result = CliRunner().invoke(app, ["scale", "run", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "1 workers" in result.output
    data = tmp_path / "data"
    for layer in ("02_linked/records.parquet", "03_panel/panel.parquet",
                  "04_features/features.parquet"):  # fmt: skip
        assert (data / layer).is_file(), f"{layer}: the pandas commands write one file"
    features = pd.read_parquet(tmp_path / "data" / "04_features" / "features.parquet")
    forecaster = Forecaster.load(tmp_path / "data" / "05_models")
    assert forecaster.booster.num_trees() == 20
    assert forecaster.predict(features).shape == (len(features), 4)
