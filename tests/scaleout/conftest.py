"""One real Dask cluster of worker processes for the package's tests (started here: no cluster needed)."""

from collections.abc import Iterator

import pytest
from distributed import Client, LocalCluster

from fundmodel.engines.montecarlo import warm_up


@pytest.fixture(scope="package")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
    ) as local_cluster:
        yield local_cluster


@pytest.fixture(scope="package")
def client(cluster: LocalCluster) -> Iterator[Client]:
    with Client(cluster, set_as_default=False) as dask_client:
        dask_client.run(warm_up)  # compile (or load) the kernels once per worker, outside the tests' time
        yield dask_client
