"""e2e tier: a real kube-apiserver + etcd on loopback with real storage, per session.

Everything under tests/e2e is marked ``e2e``. The tier never skips: without the toolchain
binaries, or on a machine that cannot run zfs-fuse, the session fails with one line naming
the cause and the fix.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lightkube import Client

from localcluster.__main__ import kubectl_line
from localcluster.harness import LocalCluster
from localcluster.kube import Kube
from localcluster.node import LocalNode
from localcluster.storage import find_storage_binaries
from localcluster.toolchain import FIX_COMMAND, ToolchainMissingError, find_binaries
from localcluster.zfs_pool import StorageUnavailableError, preflight

_E2E_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/e2e with ``e2e``."""
    for item in items:
        if _E2E_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A started control plane + real storage + the ARC controller double, shared by the
    session, stopped at its end.

    Attributes: ``kubeconfig`` (the code under test's, context ``arc-zfs-cache-local``),
    ``client()`` / ``kube()`` (harness identity), ``audit`` (``mark()``,
    ``mutating_requests(since)``), ``mutating_requests(since)``, ``schedule_pod(ns, name,
    node)``, ``storage`` (its ``pool``: ``name``, ``datasets()``) and ``control_plane``.
    """
    missing: str | None = None
    try:
        find_binaries()
        find_storage_binaries()
        preflight()
    except (ToolchainMissingError, StorageUnavailableError) as exc:
        missing = str(exc)
    if missing is not None:
        pytest.fail(
            f"e2e tier cannot run: {missing}\n(the e2e tier never skips; fix: {FIX_COMMAND})",
            pytrace=False,
        )
    began = time.monotonic()
    # No node: pods bound to local-zfs-node are the stand-ins' (tests that deploy the
    # controller chart, whose Deployment is awaited, start a cluster with the node). The ARC
    # controller double runs so that whatever deploys the scale-set chart can be destroyed.
    cluster = LocalCluster(tmp_path_factory.mktemp("local-cluster"), arc_controller=True)
    cluster.start()
    # Shown with -s (and on failure): how long the tier's set-up took.
    print(
        f"\nlocal cluster up in {time.monotonic() - began:.1f}s "
        f"(control plane {cluster.control_plane.startup_seconds:.1f}s): "
        f"{kubectl_line(cluster.kubeconfig)}"
    )
    try:
        yield cluster
    finally:
        cluster.stop()


# A module whose tests need a cluster of their own (the local node, say) defines ``cluster``;
# these give its tests the node and the harness's clients of that cluster.
@pytest.fixture(scope="module")
def node(cluster: LocalCluster) -> LocalNode:
    """The module cluster's local node (it must have been started with one)."""
    assert cluster.node is not None
    return cluster.node


@pytest.fixture(scope="module")
def client(cluster: LocalCluster) -> Client:
    """A lightkube client of the module's cluster, as the harness."""
    return cluster.client()


@pytest.fixture(scope="module")
def kube(cluster: LocalCluster) -> Kube:
    """The harness's :class:`~localcluster.kube.Kube` of the module's cluster."""
    return cluster.kube()
