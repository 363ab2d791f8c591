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

from localcluster.__main__ import kubectl_line
from localcluster.harness import LocalCluster
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
