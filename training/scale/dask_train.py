"""Training on Dask: one Poisson booster with ``lightgbm.dask``, then a Forecaster.

Rows are spread over the workers and LightGBM trains data-parallel across
them. The booster is brought back to the client (``to_local().booster_``) and
wrapped in the same :class:`training.forecaster.Forecaster` as the pandas path, so
backtest, governance and serving use it unchanged. Differences from
``fit_forecaster``:

- the training sample (when ``max_train_rows`` caps it) is a seeded Bernoulli
  sample of each partition as it was read, of the same expected size, not the
  same rows; nothing is shuffled before it is drawn;
- data-parallel histograms are summed across workers, so trees can differ
  slightly from a single-machine fit on the same rows;
- with ``split_by_horizon`` the (sampled) rows are gathered on one worker:
  LightGBM refuses forced splits in data-parallel learning ("Don't support
  forcedsplits in data tree learner"), and one worker fits the very booster
  ``fit_forecaster`` fits. Cap ``max_train_rows`` so the sample fits one
  worker's memory, or set ``split_by_horizon`` false to train data-parallel;
- the dispersion is fitted on all training rows, not a sample of 200,000;
- no early stopping (``lightgbm.dask`` does not support it and can hang).
"""

from __future__ import annotations

import tempfile
import uuid
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import dask.dataframe as dd
import numpy as np
import pandas as pd

from training.config import ModelParams
from training.errors import SchemaError
from training.features import assert_no_sensitive
from training.model import (
    MAX_DISPERSION,
    MIN_DISPERSION,
    NO_TARGET,
    Forecaster,
    horizon_splits,
    lgb_params,
)
from training.scale.cluster import frame_config

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["dask_lgb_kwargs", "fit_forecaster_dask", "SKLEARN_NAMES"]


#: ``lgb_params`` name -> ``LGBMRegressor`` name, where the two differ
SKLEARN_NAMES = {
    "min_data_in_leaf": "min_child_samples",
    "feature_fraction": "colsample_bytree",
    "bagging_fraction": "subsample",
    "bagging_freq": "subsample_freq",
    "lambda_l2": "reg_lambda",
    "seed": "random_state",
}
#: ``lgb_params`` names lightgbm.dask sets itself (threads: per worker)
PER_WORKER = ("num_threads",)


def dask_lgb_kwargs(params: ModelParams, *, num_boost_round: int | None = None) -> dict:
    """Keyword arguments of ``lightgbm.DaskLGBMRegressor``, derived from ``lgb_params``.

    One mapping: every setting of ``training.model.lgb_params`` under its
    scikit-learn name (``SKLEARN_NAMES``), except the thread count, which
    ``lightgbm.dask`` sets per worker.
    """
    native = lgb_params(params)
    kwargs = {SKLEARN_NAMES.get(k, k): v for k, v in native.items() if k not in PER_WORKER}
    kwargs["n_estimators"] = num_boost_round or params.num_boost_round
    return kwargs


def _training_rows(
    features: dd.DataFrame, columns: list[str], params: ModelParams, *, partitions: int
) -> tuple[dd.DataFrame, int]:
    """Return the training rows, persisted in ``partitions`` (or more) non-empty parts."""
    observed = features.loc[features["y"].notnull(), [*columns, "y"]]
    n_rows = int(observed.shape[0].compute())
    if n_rows == 0:
        raise SchemaError("features", NO_TARGET, field="y")
    if params.max_train_rows is not None and n_rows > params.max_train_rows:
        # per partition as read: only the sample is ever moved between workers
        observed = observed.sample(frac=params.max_train_rows / n_rows, random_state=params.seed)
    observed = observed.astype({c: "float32" for c in columns}).astype({"y": "float64"})
    if partitions == 1:
        observed = observed.repartition(npartitions=1)
    elif observed.npartitions < partitions:
        observed = observed.repartition(npartitions=partitions)
    # lightgbm.dask gives every worker whole partitions: drop empty ones.
    observed = observed.persist()
    lengths = observed.map_partitions(len).compute()
    keep = [i for i, n in enumerate(lengths) if n > 0]
    return observed.partitions[keep], int(sum(lengths))


def _write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` on the machine this runs on (a worker)."""
    from training.atomic import write_files

    write_files({Path(path): text.encode()})


def _remove(path: str) -> None:
    Path(path).unlink(missing_ok=True)


def _split_kwargs(kwargs: dict, horizons: np.ndarray, path: str) -> dict:
    """``kwargs`` that split every tree on horizon first, as ``training.model`` does."""
    return {
        **kwargs,
        "forcedsplits_filename": path,
        "num_leaves": kwargs["num_leaves"] * len(horizons),
        "colsample_bytree": 1.0,
        "feature_fraction_bynode": kwargs["colsample_bytree"],
    }


def _moments(part: pd.DataFrame, booster, columns: list[str]) -> pd.DataFrame:
    """Return the method-of-moments dispersion sums of one partition."""
    y = part["y"].to_numpy(np.float64)
    mu = np.asarray(booster.predict(part[columns].to_numpy(np.float32)), dtype=np.float64)
    return pd.DataFrame({"num": [float(np.sum((y - mu) ** 2 - mu))], "den": [float(np.sum(mu**2))]})


def fit_forecaster_dask(
    features: dd.DataFrame,
    columns: list[str],
    params: ModelParams,
    *,
    client: Client,
    num_boost_round: int | None = None,
) -> Forecaster:
    """Fit the Poisson booster with ``lightgbm.dask`` and the NB dispersion.

    Parameters
    ----------
    features : rows of ``build_features_dask`` (or any dask frame with the
        ``columns`` and ``y``).
    columns : the feature columns (``feature_columns(features._meta)``).
    params : LightGBM settings and interval levels.
    client : the Dask client to train on.
    num_boost_round : overrides ``params.num_boost_round``.

    Returns
    -------
    Forecaster
        A local booster; ``save``, ``predict`` and MLflow logging work as for
        ``fit_forecaster``.

    Notes
    -----
    ``max_train_rows`` is drawn in each partition of ``features`` as given, before
    any row moves. ``split_by_horizon`` is honoured as in ``fit_forecaster``
    (every tree splits on ``horizon`` first), but on one worker: LightGBM
    refuses forced splits in data-parallel learning, so the sampled rows are
    gathered into one partition and fitted there.

    Raises
    ------
    SchemaError
        When no row has an observed ``y``.
    """
    from lightgbm import DaskLGBMRegressor

    assert_no_sensitive(columns)
    columns = list(columns)
    split = params.split_by_horizon and "horizon" in columns
    workers = len(client.scheduler_info(n_workers=-1)["workers"])
    kwargs = dask_lgb_kwargs(params, num_boost_round=num_boost_round)
    # the forced-splits file must exist where each worker trains
    splits_file = str(Path(tempfile.gettempdir()) / f"harmcast-splits-{uuid.uuid4().hex}.json")
    with frame_config():
        train, _ = _training_rows(features, columns, params, partitions=1 if split else workers)
        # split_out=1: a tree reduction (the default shuffles)
        horizons = np.sort(train["horizon"].unique(split_out=1).compute()) if split else []
        if len(horizons) > 1:
            client.run(_write_text, splits_file, horizon_splits(columns, horizons))
            kwargs = _split_kwargs(kwargs, horizons, splits_file)
        model = DaskLGBMRegressor(client=client, **kwargs)
        try:
            with warnings.catch_warnings():
                # n_jobs is set per worker from its thread count by lightgbm.dask.
                warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
                model.fit(train[columns], train["y"])
        finally:
            if len(horizons) > 1:
                client.run(_remove, splits_file)
        booster = model.to_local().booster_
        sums = train.map_partitions(_moments, booster, columns,
                                    meta={"num": "f8", "den": "f8"}).sum().compute()  # fmt: skip
    alpha = sums["num"] / max(float(sums["den"]), 1e-12)
    alpha = float(np.clip(alpha, MIN_DISPERSION, MAX_DISPERSION))
    return Forecaster(booster, tuple(columns), alpha, tuple(params.interval), params)
