"""The local control plane and the storage simulator against a real kube-apiserver."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from lightkube import ApiError
from lightkube.types import CascadeType

from components.constants import (
    OPENEBS_NAMESPACE,
    OPENEBS_SOURCE_VOLUME_LABEL,
    OPENEBS_ZFS_CSI_DRIVER,
)
from localcluster.__main__ import kubectl_line
from localcluster.controlplane import CONTEXT, LocalControlPlane
from localcluster.harness import LocalCluster
from localcluster.kube import Kube, meta
from localcluster.processes import pid_alive
from localcluster.zfs_model import TOPOLOGY_KEY, ZFS_FINALIZER

T = TypeVar("T")
Obj = dict[str, Any]
POOL = "zfspv-pool"


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 20.0) -> T:
    """Poll ``probe`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def never(what: str, probe: Callable[[], object], duration: float = 1.0) -> None:
    """Assert ``probe`` stays falsy for ``duration`` seconds."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        assert not probe(), what
        time.sleep(0.05)


@pytest.fixture(scope="module")
def kube(local_cluster: LocalCluster) -> Kube:
    return local_cluster.kube()


@pytest.fixture(scope="module")
def admin(local_cluster: LocalCluster) -> Kube:
    return local_cluster.kube("admin")


@pytest.fixture(scope="module")
def classes(kube: Kube) -> dict[str, str]:
    """An Immediate and a WaitForFirstConsumer ZFS class and a snapshot class."""
    names = {"immediate": "sim-zfs-immediate", "wffc": "sim-zfs-wffc", "snap": "sim-zfs-snap"}
    for key, mode in (("immediate", "Immediate"), ("wffc", "WaitForFirstConsumer")):
        kube.ensure(
            "StorageClass",
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {"name": names[key]},
                "provisioner": OPENEBS_ZFS_CSI_DRIVER,
                "parameters": {"poolname": POOL, "fstype": "zfs", "recordsize": "128k"},
                "reclaimPolicy": "Delete",
                "volumeBindingMode": mode,
            },
        )
    kube.ensure(
        "VolumeSnapshotClass",
        {
            "apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshotClass",
            "metadata": {"name": names["snap"]},
            "driver": OPENEBS_ZFS_CSI_DRIVER,
            "deletionPolicy": "Delete",
        },
    )
    return names


@pytest.fixture
def namespace(kube: Kube) -> Iterator[str]:
    name = f"sim-{uuid.uuid4().hex[:8]}"
    kube.create("Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name


def claim(
    kube: Kube,
    ns: str,
    name: str,
    storage_class: str,
    size: str = "1Gi",
    *,
    source: Obj | None = None,
    annotations: dict[str, str] | None = None,
) -> Obj:
    spec: Obj = {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": storage_class,
        "resources": {"requests": {"storage": size}},
    }
    if source is not None:
        spec["dataSource"] = source
    metadata: Obj = {"name": name, "namespace": ns}
    if annotations:
        metadata["annotations"] = annotations
    return kube.create(
        "PersistentVolumeClaim",
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata, "spec": spec},
    )


def bound(kube: Kube, ns: str, name: str, timeout: float = 20.0) -> Obj:
    def probe() -> Obj | None:
        pvc = kube.get("PersistentVolumeClaim", name, ns)
        return pvc if pvc and (pvc.get("status") or {}).get("phase") == "Bound" else None

    return wait_for(f"PVC {ns}/{name} Bound", probe, timeout)


def zfs_volume(kube: Kube, name: str) -> Obj | None:
    return kube.get("ZFSVolume", name, OPENEBS_NAMESPACE)


def events(kube: Kube, ns: str, name: str, reason: str) -> list[str]:
    return [
        e["message"]
        for e in kube.list("Event", ns)
        if e["involvedObject"].get("name") == name and e.get("reason") == reason
    ]


def pvc_source(name: str) -> Obj:
    return {"kind": "PersistentVolumeClaim", "name": name}


def snapshot_source(name: str) -> Obj:
    return {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": name}


def pod(kube: Kube, ns: str, name: str, volumes: list[Obj]) -> Obj:
    wait_for("default service account", lambda: kube.get("ServiceAccount", "default", ns))
    return kube.create(
        "Pod",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "containers": [
                    {
                        "name": "main",
                        "image": "registry.invalid/none:1",
                        "volumeMounts": [
                            {"name": v["name"], "mountPath": f"/{v['name']}"} for v in volumes
                        ],
                    }
                ],
                "volumes": volumes,
            },
        },
    )


# --- control plane ----------------------------------------------------------------------


def test_control_plane_starts_and_stops_leaving_nothing(tmp_path: Path) -> None:
    plane = LocalControlPlane(tmp_path / "cp")
    with plane:
        assert plane.startup_seconds is not None and plane.startup_seconds < 120
        pids = list(plane.pids().values())
        assert {"etcd", "kube-apiserver"} <= set(plane.pids())
        config = yaml.safe_load(plane.kubeconfig.read_text())
        assert config["current-context"] == CONTEXT
        assert config["clusters"][0]["cluster"]["server"].startswith("https://127.0.0.1:")
        names = {meta(n)["name"] for n in plane.kube("admin").list("Namespace")}
        assert {"default", "kube-system"} <= names
        crds = {meta(c)["name"] for c in plane.kube().list("CustomResourceDefinition")}
        assert {
            "volumesnapshots.snapshot.storage.k8s.io",
            "volumesnapshotcontents.snapshot.storage.k8s.io",
            "volumesnapshotclasses.snapshot.storage.k8s.io",
            "zfsvolumes.zfs.openebs.io",
            "zfssnapshots.zfs.openebs.io",
            "autoscalingrunnersets.actions.github.com",
            "autoscalinglisteners.actions.github.com",
            "ephemeralrunnersets.actions.github.com",
        } <= crds
    assert not plane.running()
    assert [pid for pid in pids if pid_alive(pid)] == []
    assert list((tmp_path / "cp" / "run").glob("*.pid")) == []


def test_restricted_namespace_rejects_privileged_pod(kube: Kube, admin: Kube) -> None:
    ns = f"psa-{uuid.uuid4().hex[:8]}"
    kube.create(
        "Namespace",
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": ns,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            },
        },
    )
    wait_for("default service account", lambda: kube.get("ServiceAccount", "default", ns))
    container: Obj = {
        "name": "job",
        "image": "registry.invalid/job:1",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "runAsUser": 1001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    good: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "job", "namespace": ns},
        "spec": {"containers": [container]},
    }
    admin.create("Pod", good, dry_run=True)
    bad = yaml.safe_load(yaml.safe_dump(good))
    bad["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    with pytest.raises(ApiError) as refused:
        admin.create("Pod", bad, dry_run=True)
    assert refused.value.status.code == 403
    assert 'violates PodSecurity "restricted:latest"' in (refused.value.status.message or "")
    assert kube.get("Pod", "job", ns) is None  # dry-run: nothing was stored


def test_audit_log_records_a_create_by_the_code_under_test(
    local_cluster: LocalCluster, kube: Kube, admin: Kube, namespace: str
) -> None:
    mark = local_cluster.audit.mark()
    kube.create(
        "Event",
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "by-harness", "namespace": namespace},
            "involvedObject": {"kind": "Namespace", "name": namespace, "namespace": namespace},
            "reason": "Test",
            "message": "harness writes are not the code under test's",
        },
    )
    admin.create(
        "ServiceAccount",
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "mine", "namespace": namespace},
        },
    )
    requests = local_cluster.mutating_requests(mark)
    described = [e.describe() for e in requests]
    assert [e for e in requests if e.resource == "serviceaccounts" and e.name == "mine"], described
    assert all(e.user == "arc-zfs-cache-admin" for e in requests), described
    assert not [e for e in requests if e.name == "by-harness"]
    every = local_cluster.audit.requests(mark, include_infrastructure=True)
    assert any(e.name == "by-harness" and e.verb == "create" for e in every)


# --- storage simulator -------------------------------------------------------------------


def test_immediate_claim_binds_with_pv_and_zfsvolume(
    kube: Kube, classes: dict[str, str], namespace: str
) -> None:
    created = claim(kube, namespace, "data", classes["immediate"], "1536Mi")
    pvc = bound(kube, namespace, "data")
    pv_name = f"pvc-{meta(created)['uid']}"
    assert pvc["spec"]["volumeName"] == pv_name
    assert pvc["status"]["capacity"] == {"storage": "2Gi"}  # the driver rounds up to GiB
    pv = kube.get("PersistentVolume", pv_name)
    assert pv is not None
    assert pv["spec"]["csi"]["driver"] == OPENEBS_ZFS_CSI_DRIVER
    assert pv["spec"]["csi"]["volumeHandle"] == pv_name
    assert pv["spec"]["claimRef"]["uid"] == meta(created)["uid"]
    term = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert term == {"key": TOPOLOGY_KEY, "operator": "In", "values": ["local-node-1"]}
    zv = zfs_volume(kube, pv_name)
    assert zv is not None
    assert zv["spec"] == {
        "capacity": str(2 * 1024**3),
        "ownerNodeID": "local-node-1",
        "poolName": POOL,
        "volumeType": "DATASET",
        "fsType": "zfs",
        "recordsize": "128k",
    }
    assert zv["status"] == {"state": "Ready"}
    assert ZFS_FINALIZER in meta(zv)["finalizers"]


def test_wait_for_first_consumer_binds_on_the_scheduled_pods_node(
    local_cluster: LocalCluster, kube: Kube, classes: dict[str, str], namespace: str
) -> None:
    created = claim(kube, namespace, "late", classes["wffc"])
    pod(kube, namespace, "user", [{"name": "data", "persistentVolumeClaim": {"claimName": "late"}}])
    never(
        "an unscheduled consumer must not trigger provisioning",
        lambda: (
            (kube.get("PersistentVolumeClaim", "late", namespace) or {})
            .get("spec", {})
            .get("volumeName")
        ),
    )
    local_cluster.schedule_pod(namespace, "user", "node-b")
    bound(kube, namespace, "late")
    zv = zfs_volume(kube, f"pvc-{meta(created)['uid']}")
    assert zv is not None and zv["spec"]["ownerNodeID"] == "node-b"
    # A claim that names its node (as the program does for parents) needs no pod.
    claim(
        kube,
        namespace,
        "named",
        classes["wffc"],
        annotations={"volume.kubernetes.io/selected-node": "node-c"},
    )
    named = bound(kube, namespace, "named")
    zv = zfs_volume(kube, named["spec"]["volumeName"])
    assert zv is not None and zv["spec"]["ownerNodeID"] == "node-c"


def test_clone_of_exact_size_lands_on_the_source_node_with_lineage(
    kube: Kube, classes: dict[str, str], namespace: str
) -> None:
    claim(
        kube,
        namespace,
        "parent",
        classes["wffc"],
        "1Gi",
        annotations={"volume.kubernetes.io/selected-node": "node-a"},
    )
    parent_pv = bound(kube, namespace, "parent")["spec"]["volumeName"]
    claim(kube, namespace, "child", classes["wffc"], "1024Mi", source=pvc_source("parent"))
    # A clone with a WaitForFirstConsumer class still needs a consumer (or a selected node).
    kube.patch(
        "PersistentVolumeClaim",
        "child",
        {"metadata": {"annotations": {"volume.kubernetes.io/selected-node": "node-z"}}},
        namespace,
    )
    child_pv = bound(kube, namespace, "child")["spec"]["volumeName"]
    zv = zfs_volume(kube, child_pv)
    assert zv is not None
    assert meta(zv)["labels"][OPENEBS_SOURCE_VOLUME_LABEL] == parent_pv
    assert zv["spec"]["snapname"] == f"{parent_pv}@{child_pv}"
    assert zv["spec"]["ownerNodeID"] == "node-a"  # the dataset's node, not the selected one
    assert zv["spec"]["poolName"] == POOL


def test_clone_of_other_size_or_class_is_refused(
    kube: Kube, classes: dict[str, str], namespace: str
) -> None:
    claim(kube, namespace, "src", classes["immediate"], "1Gi")
    bound(kube, namespace, "src")
    claim(kube, namespace, "bigger", classes["immediate"], "2Gi", source=pvc_source("src"))
    claim(
        kube,
        namespace,
        "other-class",
        classes["wffc"],
        "1Gi",
        source=pvc_source("src"),
        annotations={"volume.kubernetes.io/selected-node": "local-node-1"},
    )
    size = wait_for("size refusal", lambda: events(kube, namespace, "bigger", "ProvisioningFailed"))
    assert size == [
        f'failed to provision volume with StorageClass "{classes["immediate"]}": '
        "rpc error: code = Internal desc = clone: volume size is not matching"
    ]
    other = wait_for(
        "class refusal", lambda: events(kube, namespace, "other-class", "ProvisioningFailed")
    )
    assert "must be in the same storage class for cloning" in other[0]
    for name in ("bigger", "other-class"):
        pvc = kube.get("PersistentVolumeClaim", name, namespace)
        assert pvc is not None and pvc["status"]["phase"] == "Pending"
        assert not pvc["spec"].get("volumeName")


def test_snapshot_becomes_ready_and_restores_at_its_size(
    local_cluster: LocalCluster, kube: Kube, classes: dict[str, str], namespace: str
) -> None:
    claim(kube, namespace, "work", classes["immediate"], "1Gi")
    work_pv = bound(kube, namespace, "work")["spec"]["volumeName"]
    with local_cluster.simulator_config(snapshot_ready_delay=1.0):
        snap = kube.create(
            "VolumeSnapshot",
            {
                "apiVersion": "snapshot.storage.k8s.io/v1",
                "kind": "VolumeSnapshot",
                "metadata": {"name": "snap", "namespace": namespace},
                "spec": {
                    "volumeSnapshotClassName": classes["snap"],
                    "source": {"persistentVolumeClaimName": "work"},
                },
            },
        )
        began = time.monotonic()

        def status() -> Obj:
            return (kube.get("VolumeSnapshot", "snap", namespace) or {}).get("status") or {}

        wait_for("snapshot bound", lambda: status().get("boundVolumeSnapshotContentName"))
        assert status()["readyToUse"] is False
        wait_for("snapshot ready", lambda: status().get("readyToUse"))
        assert time.monotonic() - began >= 0.9
    uid = meta(snap)["uid"]
    assert status()["restoreSize"] == "1Gi"
    assert status()["boundVolumeSnapshotContentName"] == f"snapcontent-{uid}"
    content = kube.get("VolumeSnapshotContent", f"snapcontent-{uid}")
    assert content is not None
    assert content["status"]["snapshotHandle"] == f"{work_pv}@snapshot-{uid}"
    assert content["status"]["restoreSize"] == 1024**3
    assert content["spec"]["volumeSnapshotRef"]["uid"] == uid
    zsnap = kube.get("ZFSSnapshot", f"snapshot-{uid}", OPENEBS_NAMESPACE)
    assert zsnap is not None and zsnap["status"]["state"] == "Ready"
    claim(kube, namespace, "restored", classes["immediate"], "1Gi", source=snapshot_source("snap"))
    restored_pv = bound(kube, namespace, "restored")["spec"]["volumeName"]
    zv = zfs_volume(kube, restored_pv)
    assert zv is not None and zv["spec"]["snapname"] == f"{work_pv}@snapshot-{uid}"
    claim(kube, namespace, "too-big", classes["immediate"], "3Gi", source=snapshot_source("snap"))
    refused = wait_for(
        "restore refusal", lambda: events(kube, namespace, "too-big", "ProvisioningFailed")
    )
    assert refused[0].endswith(
        "rpc error: code = Internal desc = clone volume size is not matching"
    )


def test_volume_with_a_clone_stays_terminating_until_the_clone_is_gone(
    kube: Kube, classes: dict[str, str], namespace: str
) -> None:
    claim(kube, namespace, "origin", classes["immediate"], "1Gi")
    origin_pv = bound(kube, namespace, "origin")["spec"]["volumeName"]
    claim(kube, namespace, "copy", classes["immediate"], "1Gi", source=pvc_source("origin"))
    copy_pv = bound(kube, namespace, "copy")["spec"]["volumeName"]
    kube.delete("PersistentVolumeClaim", "origin", namespace)
    wait_for(
        "origin ZFSVolume terminating",
        lambda: meta(zfs_volume(kube, origin_pv) or {}).get("deletionTimestamp"),
    )
    never(
        "a volume with a dependent clone must not be destroyed",
        lambda: (
            zfs_volume(kube, origin_pv) is None or kube.get("PersistentVolume", origin_pv) is None
        ),
        duration=1.5,
    )
    zv = zfs_volume(kube, origin_pv)
    assert zv is not None and ZFS_FINALIZER in meta(zv)["finalizers"]
    pv = kube.get("PersistentVolume", origin_pv)
    assert pv is not None and pv["status"]["phase"] == "Released"
    kube.delete("PersistentVolumeClaim", "copy", namespace)
    for name in (copy_pv, origin_pv):
        wait_for(f"ZFSVolume {name} gone", lambda n=name: zfs_volume(kube, n) is None)  # type: ignore[misc]
        wait_for(f"PV {name} gone", lambda n=name: kube.get("PersistentVolume", n) is None)  # type: ignore[misc]


def test_ephemeral_volume_gets_a_pod_owned_claim_collected_with_the_pod(
    kube: Kube, classes: dict[str, str], namespace: str
) -> None:
    template: Obj = {
        "metadata": {"labels": {"purpose": "cache-clone"}},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": classes["immediate"],
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    owner = pod(
        kube, namespace, "job", [{"name": "cache", "ephemeral": {"volumeClaimTemplate": template}}]
    )
    pvc = bound(kube, namespace, "job-cache")
    assert meta(pvc)["labels"] == {"purpose": "cache-clone"}
    ref = meta(pvc)["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == (
        "Pod",
        "job",
        meta(owner)["uid"],
        True,
    )
    pv_name = pvc["spec"]["volumeName"]
    kube.delete("Pod", "job", namespace)
    wait_for(
        "claim collected", lambda: kube.get("PersistentVolumeClaim", "job-cache", namespace) is None
    )
    wait_for("volume deleted", lambda: kube.get("PersistentVolume", pv_name) is None)
    assert zfs_volume(kube, pv_name) is None


def test_foreground_delete_and_namespace_deletion_complete(kube: Kube, admin: Kube) -> None:
    ns = f"gone-{uuid.uuid4().hex[:8]}"
    kube.create("Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    sa = admin.create(
        "ServiceAccount",
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "owner", "namespace": ns},
        },
    )
    # Events are ignored by the garbage collector: own something it collects.
    admin.create(
        "ConfigMap",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "owned",
                "namespace": ns,
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "ServiceAccount",
                        "name": "owner",
                        "uid": meta(sa)["uid"],
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "data": {"owned-by": "owner"},
        },
    )
    # What pulumi-kubernetes sends: foreground cascading deletion.
    admin.client.delete(
        Kube.kind("ServiceAccount").resource, "owner", namespace=ns, cascade=CascadeType.FOREGROUND
    )
    wait_for("owner gone", lambda: kube.get("ServiceAccount", "owner", ns) is None)
    assert kube.get("ConfigMap", "owned", ns) is None
    admin.delete("Namespace", ns)
    wait_for("namespace finalized", lambda: kube.get("Namespace", ns) is None, timeout=30)


def test_without_controller_manager_the_simulator_plays_the_core_controllers(
    tmp_path: Path,
) -> None:
    with LocalCluster(tmp_path / "no-kcm", controller_manager=False) as cluster:
        assert not cluster.control_plane.controller_manager
        kube, admin = cluster.kube(), cluster.kube("admin")
        ns = "plain"
        admin.create(
            "Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        )
        kube.ensure(
            "StorageClass",
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {"name": "zfs"},
                "provisioner": OPENEBS_ZFS_CSI_DRIVER,
                "parameters": {"poolname": POOL, "fstype": "zfs"},
            },
        )
        # Ephemeral volume controller + garbage collection of the pod's claim.
        template: Obj = {
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "zfs",
                "resources": {"requests": {"storage": "1Gi"}},
            }
        }
        pod(admin, ns, "job", [{"name": "cache", "ephemeral": {"volumeClaimTemplate": template}}])
        volume = bound(kube, ns, "job-cache")["spec"]["volumeName"]
        admin.delete("Pod", "job", ns)
        wait_for(
            "claim collected", lambda: kube.get("PersistentVolumeClaim", "job-cache", ns) is None
        )
        wait_for("volume deleted", lambda: kube.get("PersistentVolume", volume) is None)
        # Static binding of an imported volume (claimRef without uid + volumeName).
        admin.create(
            "PersistentVolume",
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": "imported"},
                "spec": {
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": "zfs",
                    "claimRef": {"namespace": ns, "name": "imported"},
                    "csi": {"driver": OPENEBS_ZFS_CSI_DRIVER, "volumeHandle": "imported"},
                },
            },
        )
        admin.create(
            "PersistentVolumeClaim",
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "imported", "namespace": ns},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "zfs",
                    "volumeName": "imported",
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        )
        assert bound(kube, ns, "imported")["spec"]["volumeName"] == "imported"
        # Foreground deletion (what pulumi-kubernetes sends) and namespace finalization.
        sa = admin.create(
            "ServiceAccount",
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "owner", "namespace": ns},
            },
        )
        admin.create(
            "ConfigMap",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "owned",
                    "namespace": ns,
                    "ownerReferences": [
                        {
                            "apiVersion": "v1",
                            "kind": "ServiceAccount",
                            "name": "owner",
                            "uid": meta(sa)["uid"],
                            "blockOwnerDeletion": True,
                        }
                    ],
                },
            },
        )
        admin.client.delete(
            Kube.kind("ServiceAccount").resource,
            "owner",
            namespace=ns,
            cascade=CascadeType.FOREGROUND,
        )
        wait_for("owner gone", lambda: kube.get("ServiceAccount", "owner", ns) is None)
        assert kube.get("ConfigMap", "owned", ns) is None
        admin.delete("PersistentVolumeClaim", "imported", ns)
        admin.delete("Namespace", ns)
        wait_for("namespace finalized", lambda: kube.get("Namespace", ns) is None, timeout=30)
    assert not cluster.control_plane.running()


def test_cli_up_status_down_leaves_nothing_running(tmp_path: Path) -> None:
    state = tmp_path / "cli"
    root = Path(__file__).resolve().parents[2]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "localcluster", "--state-dir", str(state), *args],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    started = cli("up")
    try:
        assert started.returncode == 0, started.stderr
        assert kubectl_line(state / "kubeconfig") in started.stdout
        status = cli("status")
        assert status.returncode == 0, status.stdout
        assert "storage-simulator        running" in status.stdout
        assert cli("kubeconfig").stdout.strip() == str(state / "kubeconfig")
        pids = [json.loads(p.read_text())["pid"] for p in (state / "run").glob("*.pid")]
        assert len(pids) >= 3
    finally:
        stopped = cli("down")
    assert stopped.returncode == 0, stopped.stderr
    assert cli("status").returncode == 3
    assert [pid for pid in pids if pid_alive(pid)] == []


def test_a_restarted_simulator_converges_from_the_api_alone(
    local_cluster: LocalCluster, kube: Kube, classes: dict[str, str], namespace: str
) -> None:
    claim(kube, namespace, "base", classes["immediate"], "1Gi")
    base_pv = bound(kube, namespace, "base")["spec"]["volumeName"]
    claim(kube, namespace, "derived", classes["immediate"], "1Gi", source=pvc_source("base"))
    bound(kube, namespace, "derived")
    assert local_cluster.simulator is not None
    local_cluster.simulator.stop()
    try:
        # While nobody plays the storage system, work piles up.
        claim(kube, namespace, "queued", classes["immediate"], "1Gi")
        kube.delete("PersistentVolumeClaim", "base", namespace)
        time.sleep(0.5)
        queued = kube.get("PersistentVolumeClaim", "queued", namespace)
        assert queued is not None and queued["status"]["phase"] == "Pending"
    finally:
        local_cluster.restart_simulator(provision_delay=0.5)
    began = time.monotonic()
    bound(kube, namespace, "queued")
    assert time.monotonic() - began >= 0.4  # the provisioning delay applies
    # The lineage came back from the objects: the base volume is kept for its clone.
    wait_for(
        "base ZFSVolume terminating",
        lambda: meta(zfs_volume(kube, base_pv) or {}).get("deletionTimestamp"),
    )
    never("base destroyed under its clone", lambda: zfs_volume(kube, base_pv) is None, 1.0)
    local_cluster.restart_simulator(provision_delay=0.0)
