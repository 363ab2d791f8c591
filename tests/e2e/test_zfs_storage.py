"""The local cluster's real storage: zfs-fuse, csi-provisioner, csi-snapshotter, snapshot-controller.

The ZFS CSI driver double (localcluster/zfs_csi) against the real sidecars and a real pool:
every claim here is provisioned by the real external-provisioner, every snapshot taken by
the real snapshot controller and csi-snapshotter, and every assertion on datasets reads
``zfs list`` itself. The module has its own control plane (beside the session's) and
a pool named after this process, so it runs beside other local clusters on the machine.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from components import constants as c
from localcluster.controlplane import LocalControlPlane
from localcluster.kube import Kube, meta
from localcluster.storage import DEFAULT_NODE, LocalStorage, find_storage_binaries
from localcluster.toolchain import FIX_COMMAND, ToolchainMissingError, find_binaries
from localcluster.zfs_csi import REQUESTED_COMPRESSION, ZFS_FINALIZER
from localcluster.zfs_pool import Dataset, StorageUnavailableError, preflight, zfs
from tests.e2e import node_env
from tests.e2e.promotion_env import claim_body

T = TypeVar("T")
Obj = dict[str, Any]

POOL = f"e2e-zfs-{os.getpid()}"
CLASS = "zfs-e2e"
SNAPSHOT_CLASS = "zfs-e2e-snapshots"


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0) -> T:
    """Poll ``probe`` every 0.1 s until it returns something truthy."""
    return node_env.wait_for(what, probe, timeout, interval=0.1)


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStorage]:
    """A control plane with the real storage machinery; fails (never skips) without it."""
    try:
        find_binaries()
        find_storage_binaries()
        preflight()
    except (ToolchainMissingError, StorageUnavailableError) as exc:
        pytest.fail(f"storage e2e cannot run: {exc}\n(fix: {FIX_COMMAND})", pytrace=False)
    plane = LocalControlPlane(tmp_path_factory.mktemp("zfs-storage"))
    plane.start()
    local = LocalStorage(plane, pool=POOL)
    try:
        local.start()
        kube = plane.kube()
        kube.ensure(
            "Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "openebs"}}
        )
        storage_class(kube, CLASS, compression="lz4")
        kube.ensure(
            "VolumeSnapshotClass",
            {
                "apiVersion": "snapshot.storage.k8s.io/v1",
                "kind": "VolumeSnapshotClass",
                "metadata": {"name": SNAPSHOT_CLASS},
                "driver": c.OPENEBS_ZFS_CSI_DRIVER,
                "deletionPolicy": "Delete",
            },
        )
        yield local
    finally:
        try:
            local.stop(destroy=True)
        finally:
            plane.stop()
    mounted = [line for line in Path("/proc/mounts").read_text().splitlines() if POOL in line]
    assert not mounted, f"left mounted: {mounted}"


def storage_class(kube: Kube, name: str, **parameters: str) -> None:
    kube.ensure(
        "StorageClass",
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": name},
            "provisioner": c.OPENEBS_ZFS_CSI_DRIVER,
            "parameters": {"poolname": POOL, "fstype": "zfs", **parameters},
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
            "allowedTopologies": [
                {
                    "matchLabelExpressions": [
                        {"key": c.OPENEBS_NODE_TOPOLOGY_KEY, "values": [DEFAULT_NODE]}
                    ]
                }
            ],
        },
    )


@pytest.fixture
def ns(storage: LocalStorage) -> str:
    name = f"zfs-{uuid.uuid4().hex[:6]}"
    storage.plane.kube().create(
        "Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )
    return name


def claim(
    kube: Kube,
    ns: str,
    name: str,
    *,
    size: str = "1Gi",
    source: Obj | None = None,
    storage_class_name: str = CLASS,
) -> None:
    kube.create(
        "PersistentVolumeClaim",
        claim_body(ns, name, source=source, storage_class=storage_class_name, size=size),
    )


def bound(kube: Kube, ns: str, name: str) -> str:
    """Wait until the claim is Bound; its PV (= ZFSVolume = dataset) name."""

    def probe() -> str | None:
        pvc = kube.get("PersistentVolumeClaim", name, ns) or {}
        if (pvc.get("status") or {}).get("phase") == "Bound":
            return str(pvc["spec"]["volumeName"])
        return None

    return wait_for(f"PVC {ns}/{name} Bound", probe)


def datasets(storage: LocalStorage) -> dict[str, Dataset]:
    return {d.name: d for d in storage.pool.datasets()}


def events_of(kube: Kube, ns: str, name: str) -> list[str]:
    return [
        str(e.get("message"))
        for e in kube.list("Event", ns)
        if (e.get("involvedObject") or {}).get("name") == name
    ]


def snapshot(kube: Kube, ns: str, name: str, source: str) -> Obj:
    kube.create(
        "VolumeSnapshot",
        {
            "apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshot",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "volumeSnapshotClassName": SNAPSHOT_CLASS,
                "source": {"persistentVolumeClaimName": source},
            },
        },
    )
    return wait_for(
        f"VolumeSnapshot {name} readyToUse",
        lambda: (
            snap
            if ((snap := kube.get("VolumeSnapshot", name, ns) or {}).get("status") or {}).get(
                "readyToUse"
            )
            else None
        ),
    )


def test_a_claim_is_a_real_dataset_with_the_zfsvolume_upstream_writes(
    storage: LocalStorage, ns: str
) -> None:
    kube = storage.plane.kube()
    claim(kube, ns, "parent", size="1500Mi")
    pv = bound(kube, ns, "parent")
    assert f"{POOL}/{pv}" in datasets(storage)
    zv = kube.get("ZFSVolume", pv, c.OPENEBS_NAMESPACE)
    assert zv is not None
    # Rounded up to whole GiB above 1 GiB (upstream getRoundedCapacity).
    assert zv["spec"]["capacity"] == str(2 * 2**30)
    assert zv["spec"]["poolName"] == POOL
    assert zv["spec"]["ownerNodeID"] == DEFAULT_NODE
    assert zv["spec"]["volumeType"] == "DATASET"
    assert zv["spec"]["compression"] == "lz4"
    assert zv["status"] == {"state": "Ready"}
    assert meta(zv)["finalizers"] == [ZFS_FINALIZER]
    volume = kube.get("PersistentVolume", pv)
    assert volume is not None
    assert volume["spec"]["csi"]["driver"] == c.OPENEBS_ZFS_CSI_DRIVER
    terms = volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == [DEFAULT_NODE]
    # zfs-fuse has no lz4: the dataset compresses with its default and says what was asked.
    props = zfs(
        "get", "-H", "-o", "value", f"compression,quota,{REQUESTED_COMPRESSION}", f"{POOL}/{pv}"
    )
    assert props.stdout.split() == ["on", "2G", "lz4"]


def test_a_pvc_clone_is_a_zfs_clone_of_the_internal_snapshot(
    storage: LocalStorage, ns: str
) -> None:
    kube = storage.plane.kube()
    claim(kube, ns, "parent")
    parent = bound(kube, ns, "parent")
    claim(kube, ns, "clone", source={"kind": "PersistentVolumeClaim", "name": "parent"})
    clone = bound(kube, ns, "clone")
    zv = kube.get("ZFSVolume", clone, c.OPENEBS_NAMESPACE)
    assert zv is not None
    assert meta(zv)["labels"][c.OPENEBS_SOURCE_VOLUME_LABEL] == parent
    assert zv["spec"]["snapname"] == f"{parent}@{clone}"
    rows = datasets(storage)
    assert rows[f"{POOL}/{clone}"].origin == f"{POOL}/{parent}@{clone}"
    assert rows[f"{POOL}/{clone}"].used < 2**20


def test_a_clone_of_another_size_is_refused_with_the_drivers_message(
    storage: LocalStorage, ns: str
) -> None:
    kube = storage.plane.kube()
    claim(kube, ns, "parent")
    bound(kube, ns, "parent")
    claim(
        kube, ns, "bigger", size="2Gi", source={"kind": "PersistentVolumeClaim", "name": "parent"}
    )
    wait_for(
        "ProvisioningFailed with the size message",
        lambda: any(
            "clone: volume size is not matching" in m for m in events_of(kube, ns, "bigger")
        ),
    )
    pvc = kube.get("PersistentVolumeClaim", "bigger", ns) or {}
    assert (pvc.get("status") or {}).get("phase") == "Pending"


def test_a_compression_zfs_fuse_lacks_is_refused_by_name(storage: LocalStorage, ns: str) -> None:
    kube = storage.plane.kube()
    storage_class(kube, "zfs-e2e-zstd", compression="zstd")
    claim(kube, ns, "zstd", storage_class_name="zfs-e2e-zstd")
    wait_for(
        "ProvisioningFailed naming the compression",
        lambda: any("compression 'zstd'" in m for m in events_of(kube, ns, "zstd")),
    )


def test_snapshot_restore_and_the_deletion_rules(storage: LocalStorage, ns: str) -> None:
    kube = storage.plane.kube()
    claim(kube, ns, "builder")
    builder = bound(kube, ns, "builder")
    snap = snapshot(kube, ns, "gen-2-src", "builder")
    assert snap["status"]["restoreSize"] == "1Gi"
    content = kube.get("VolumeSnapshotContent", snap["status"]["boundVolumeSnapshotContentName"])
    assert content is not None
    handle = content["status"]["snapshotHandle"]
    snap_name = handle.split("@")[1]
    zsnap = kube.get("ZFSSnapshot", snap_name, c.OPENEBS_NAMESPACE)
    assert zsnap is not None
    assert meta(zsnap)["labels"][c.OPENEBS_PERSISTENT_VOLUME_LABEL] == builder
    assert zsnap["status"] == {"state": "Ready"}
    claim(
        kube,
        ns,
        "gen-2",
        source={
            "kind": "VolumeSnapshot",
            "name": "gen-2-src",
            "apiGroup": "snapshot.storage.k8s.io",
        },
    )
    gen2 = bound(kube, ns, "gen-2")
    assert datasets(storage)[f"{POOL}/{gen2}"].origin == f"{POOL}/{handle}"

    # The builder still has a ZFSSnapshot: its ZFSVolume is only marked for deletion, while
    # the real provisioner, told DeleteVolume succeeded, deletes the PV.
    kube.delete("PersistentVolumeClaim", "builder", ns)
    wait_for("builder PV deleted", lambda: kube.get("PersistentVolume", builder) is None)
    zv = kube.get("ZFSVolume", builder, c.OPENEBS_NAMESPACE)
    assert zv is not None and meta(zv).get("deletionTimestamp")
    assert f"{POOL}/{builder}" in datasets(storage)

    # The snapshot has a clone (gen-2): ZFS refuses to destroy it, so its object stays.
    kube.delete("VolumeSnapshot", "gen-2-src", ns)
    time.sleep(3)
    zsnap = kube.get("ZFSSnapshot", snap_name, c.OPENEBS_NAMESPACE)
    assert zsnap is not None and meta(zsnap).get("deletionTimestamp")
    assert f"{POOL}/{handle}" in datasets(storage)

    # Once the clone goes, everything goes: nothing is left in the pool.
    kube.delete("PersistentVolumeClaim", "gen-2", ns)
    wait_for(
        "every dataset of the test destroyed",
        lambda: not any(builder in name or gen2 in name for name in datasets(storage)),
    )
    wait_for(
        "ZFSVolume and ZFSSnapshot objects gone",
        lambda: (
            kube.get("ZFSVolume", builder, c.OPENEBS_NAMESPACE) is None
            and kube.get("ZFSSnapshot", snap_name, c.OPENEBS_NAMESPACE) is None
        ),
    )
