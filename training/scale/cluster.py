"""The Dask client harmcast runs on: a running scheduler, or a LocalCluster."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

import dask

from training.config import DaskParams
from training.errors import ConfigError

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "MSG_NO_SCHEDULER",
    "dask_client",
    "describe_client",
    "frame_config",
    "local_workers",
    "shared_client",
]

MSG_NO_SCHEDULER = "dask.scheduler_address {address!r}: no scheduler answered ({error})"
# The client of the innermost ``shared_client`` block, so that the steps of one
# ``harmcast run`` share a cluster instead of starting one each.
_SHARED: ContextVar[Client | None] = ContextVar("harmcast_dask_client", default=None)


@contextmanager
def frame_config() -> Iterator[None]:
    """Keep the pandas path's column dtypes in dask frames.

    Dask may convert string columns to its own pyarrow string dtype; the frames
    (and the parquet files written from them) should not depend on which path
    built them.
    """
    with dask.config.set({"dataframe.convert-string": False}):
        yield


def local_workers(params: DaskParams) -> int:
    """Return the LocalCluster's worker count: ``n_workers``, else as many as fit the cores.

    With ``n_workers`` None, workers x ``threads_per_worker`` stays within
    ``os.cpu_count()``: more threads than cores only make them wait for each other.
    """
    if params.n_workers is not None:
        return params.n_workers
    return max(1, (os.cpu_count() or 1) // params.threads_per_worker)


@contextmanager
def dask_client(params: DaskParams) -> Iterator[Client]:
    """Yield a connected ``distributed.Client``; close it (and its cluster) on exit.

    Parameters
    ----------
    params : ``scheduler_address`` connects to a running cluster; without it a
        ``LocalCluster`` of :func:`local_workers` x ``threads_per_worker`` starts here.

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
    # the in-process scheduler logs each shuffle's start and end as warnings: routine
    logging.getLogger("distributed.shuffle._scheduler_plugin").setLevel(logging.ERROR)
    cluster = LocalCluster(
        n_workers=local_workers(params),
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


@contextmanager
def shared_client(params: DaskParams) -> Iterator[Client]:
    """Yield the client of an enclosing ``shared_client`` block, else open one here.

    The outermost block connects (or starts a LocalCluster) with
    :func:`dask_client` and closes it on exit; nested blocks reuse its client.

    Raises
    ------
    ConfigError
        When the scheduler at ``scheduler_address`` does not answer.
    """
    active = _SHARED.get()
    if active is not None:
        yield active
        return
    with dask_client(params) as client:
        token = _SHARED.set(client)
        try:
            yield client
        finally:
            _SHARED.reset(token)


def describe_client(client: Client) -> str:
    """Name the cluster a client runs on, e.g. ``dask (tcp://10.0.0.5:8786, 8 workers)``."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    threads = sum(int(w["nthreads"]) for w in workers.values())
    return f"dask ({client.scheduler.address}, {len(workers)} workers, {threads} threads)"
