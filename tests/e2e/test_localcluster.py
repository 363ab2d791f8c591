"""The local control plane, the stand-ins and the CLI against a real kube-apiserver.

The storage parts themselves (pool, driver double, sidecars) are tests/e2e/test_zfs_storage.py's;
here they serve the controllers' tests (ephemeral volumes, collection) and the CLI's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
    OPENEBS_NODE_TOPOLOGY_KEY,
    OPENEBS_ZFS_CSI_DRIVER,
)
from localcluster.__main__ import kubectl_line
from localcluster.controlplane import CONTEXT, LocalControlPlane
from localcluster.harness import LocalCluster
from localcluster.kube import Kube, meta
from localcluster.processes import pid_alive
from localcluster.storage import DEFAULT_NODE
from localcluster.zfs_pool import zpool
from tests.e2e import node_env

T = TypeVar("T")
Obj = dict[str, Any]


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 20.0) -> T:
    """Poll ``probe`` every 0.05 s until it returns something truthy."""
    return node_env.wait_for(what, probe, timeout, interval=0.05)


@pytest.fixture(scope="module")
def kube(local_cluster: LocalCluster) -> Kube:
    return local_cluster.kube()


@pytest.fixture(scope="module")
def admin(local_cluster: LocalCluster) -> Kube:
    return local_cluster.kube("admin")


def zfs_class(kube: Kube, name: str, pool: str) -> None:
    """An Immediate ZFS class on ``pool`` of the local node, as the program makes them."""
    kube.ensure(
        "StorageClass",
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": name},
            "provisioner": OPENEBS_ZFS_CSI_DRIVER,
            "parameters": {"poolname": pool, "fstype": "zfs"},
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
            "allowedTopologies": [
                {
                    "matchLabelExpressions": [
                        {"key": OPENEBS_NODE_TOPOLOGY_KEY, "values": [DEFAULT_NODE]}
                    ]
                }
            ],
        },
    )


@pytest.fixture(scope="module")
def storage_class(kube: Kube, local_cluster: LocalCluster) -> str:
    zfs_class(kube, "cp-zfs", local_cluster.storage.pool.name)
    return "cp-zfs"


@pytest.fixture
def namespace(kube: Kube) -> Iterator[str]:
    name = f"sim-{uuid.uuid4().hex[:8]}"
    kube.create("Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name


def bound(kube: Kube, ns: str, name: str, timeout: float = 20.0) -> Obj:
    def probe() -> Obj | None:
        pvc = kube.get("PersistentVolumeClaim", name, ns)
        return pvc if pvc and (pvc.get("status") or {}).get("phase") == "Bound" else None

    return wait_for(f"PVC {ns}/{name} Bound", probe, timeout)


def zfs_volume(kube: Kube, name: str) -> Obj | None:
    return kube.get("ZFSVolume", name, OPENEBS_NAMESPACE)


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
        } <= crds
        # ARC's CRDs come with the controller chart (as on a real cluster), not as fixtures.
        assert not [name for name in crds if name.endswith(".actions.github.com")]
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


# --- controllers, on real storage -------------------------------------------------------


def test_ephemeral_volume_gets_a_pod_owned_claim_collected_with_the_pod(
    kube: Kube, local_cluster: LocalCluster, storage_class: str, namespace: str
) -> None:
    template: Obj = {
        "metadata": {"labels": {"purpose": "cache-clone"}},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage_class,
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
    dataset = f"{local_cluster.storage.pool.name}/{pv_name}"
    assert dataset in {d.name for d in local_cluster.storage.pool.datasets()}
    kube.delete("Pod", "job", namespace)
    wait_for(
        "claim collected", lambda: kube.get("PersistentVolumeClaim", "job-cache", namespace) is None
    )
    wait_for("volume deleted", lambda: kube.get("PersistentVolume", pv_name) is None)
    wait_for("ZFSVolume deleted", lambda: zfs_volume(kube, pv_name) is None)
    assert dataset not in {d.name for d in local_cluster.storage.pool.datasets()}


def foreground_delete_collects_what_it_owns(kube: Kube, admin: Kube, ns: str) -> None:
    """What pulumi-kubernetes sends, foreground cascading deletion, of a ServiceAccount that
    owns a ConfigMap: the owner goes once the garbage collector took what it owns."""
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
    admin.client.delete(
        Kube.kind("ServiceAccount").resource, "owner", namespace=ns, cascade=CascadeType.FOREGROUND
    )
    wait_for("owner gone", lambda: kube.get("ServiceAccount", "owner", ns) is None)
    assert kube.get("ConfigMap", "owned", ns) is None


def test_foreground_delete_and_namespace_deletion_complete(kube: Kube, admin: Kube) -> None:
    ns = f"gone-{uuid.uuid4().hex[:8]}"
    kube.create("Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    foreground_delete_collects_what_it_owns(kube, admin, ns)
    admin.delete("Namespace", ns)
    wait_for("namespace finalized", lambda: kube.get("Namespace", ns) is None, timeout=30)


def test_without_controller_manager_the_stand_ins_play_the_core_controllers(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # A short state dir: the storage's registration socket path must fit a unix socket's.
    state = tmp_path_factory.mktemp("no-kcm")
    with LocalCluster(state, controller_manager=False) as cluster:
        pool = cluster.storage.pool.name
        assert not cluster.control_plane.controller_manager
        kube, admin = cluster.kube(), cluster.kube("admin")
        ns = "plain"
        admin.create(
            "Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        )
        zfs_class(kube, "zfs", pool)
        # Ephemeral volume controller, the PV binder (for the real provisioner) and garbage
        # collection of the pod's claim.
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
        foreground_delete_collects_what_it_owns(kube, admin, ns)
        admin.delete("PersistentVolumeClaim", "imported", ns)
        admin.delete("Namespace", ns)
        wait_for("namespace finalized", lambda: kube.get("Namespace", ns) is None, timeout=30)
    assert not cluster.control_plane.running()
    assert zpool("list", pool, check=False).returncode != 0  # stop() destroyed the pool


def test_cli_up_status_down_leaves_nothing_running(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    state = tmp_path_factory.mktemp("cli")
    root = Path(__file__).resolve().parents[2]
    pool = f"e2e-cli-{os.getpid()}"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "localcluster",
                "--state-dir",
                str(state),
                "--pool",
                pool,
                *args,
            ],
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
        zfs_line = f"zfs list -t all -r -o name,used,origin {pool}"
        assert zfs_line in started.stdout
        status = cli("status")
        assert status.returncode == 0, status.stdout
        for part in ("csi-provisioner", "csi-snapshotter", "snapshot-controller", "zfs-csi-driver"):
            assert f"{part:24} running" in status.stdout
        assert zfs_line in status.stdout
        assert subprocess.run(zfs_line.split(), capture_output=True, check=False).returncode == 0
        assert cli("kubeconfig").stdout.strip() == str(state / "kubeconfig")
        pids = [json.loads(p.read_text())["pid"] for p in (state / "run").glob("*.pid")]
        assert len(pids) >= 3
    finally:
        stopped = cli("down")
    assert stopped.returncode == 0, stopped.stderr
    assert cli("status").returncode == 3
    assert [pid for pid in pids if pid_alive(pid)] == []
    assert zpool("list", pool, check=False).returncode != 0  # exported
    assert [m for m in Path("/proc/mounts").read_text().splitlines() if str(state) in m] == []
