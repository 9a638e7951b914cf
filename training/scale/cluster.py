"""The Dask client harmcast runs on: a running scheduler, or a LocalCluster."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import dask

from training.config import DaskParams
from training.errors import ConfigError

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["MSG_NO_SCHEDULER", "dask_client", "frame_config"]

MSG_NO_SCHEDULER = "dask.scheduler_address {address!r}: no scheduler answered ({error})"


@contextmanager
def frame_config() -> Iterator[None]:
    """Keep the pandas path's column dtypes in dask frames.

    Dask may convert string columns to its own pyarrow string dtype; the frames
    (and the parquet files written from them) should not depend on which path
    built them.
    """
    with dask.config.set({"dataframe.convert-string": False}):
        yield


@contextmanager
def dask_client(params: DaskParams) -> Iterator[Client]:
    """Yield a connected ``distributed.Client``; close it (and its cluster) on exit.

    Parameters
    ----------
    params : ``scheduler_address`` connects to a running cluster; without it a
        ``LocalCluster`` of ``n_workers`` x ``threads_per_worker`` starts here.

    Raises
    ------
    ConfigError
        When the scheduler at ``scheduler_address`` does not answer.
    """
    from distributed import Client, LocalCluster

    if params.scheduler_address:
        try:
            client = Client(params.scheduler_address, timeout=params.connect_timeout_s)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(
                MSG_NO_SCHEDULER.format(address=params.scheduler_address, error=exc)
            ) from exc
        try:
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(
        n_workers=params.n_workers,
        threads_per_worker=params.threads_per_worker,
        processes=params.processes,
        memory_limit=params.memory_limit,
        dashboard_address=params.dashboard_address,
    )
    try:
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()
