"""Real ZFS clones mounted in real pods: the shipped ``local`` stack's caches on the local node.

One cluster with the node (``LocalCluster(node=True)``); the caches and scale sets of
Pulumi.local.yaml, on the cluster's pool: each cache's generation-1 parent claim, the
program's hook template per scale set (``components.hook_template``), a runner pod as the
chart renders it (its ``work`` volume a ZFS dataset too) and, from its view, the hook
double's job pod. The ZFS CSI driver double registers itself with the kubelet (CSINode lists
it) and its Node service bind-mounts each clone's dataset into the pod; the kubelet applies
``fsGroup`` with ``OnRootMismatch`` as on a real cluster (the CSIDriver has OpenEBS's
default policy). The deployed program's runners are tests/e2e/test_node_stack.py's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from lightkube import ApiError, Client
from lightkube.resources.core_v1 import Node, PersistentVolumeClaim, Pod
from lightkube.resources.storage_v1 import CSINode

from components import constants as c
from components.hook_template import CacheMount, hook_template
from localcluster import hook_double
from localcluster.harness import LocalCluster
from localcluster.images import JOB_IMAGE
from localcluster.kube import meta
from localcluster.node import NODE_NAME, mount_points_under
from localcluster.zfs_pool import zfs
from policy.arc_policy.hook_merge import HOOK_JOB_CONTAINER, job_pod_name
from tests.e2e import node_env

pytestmark = pytest.mark.e2e

T = TypeVar("T")
MARKER = "parent-marker"
RESTRICTED = node_env.RESTRICTED_NAMESPACE_LABELS


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 120.0) -> T:
    return node_env.wait_for(what, check, timeout, interval=0.25)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with node_env.node_cluster(tmp_path_factory.mktemp("node-storage")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def config(cluster: LocalCluster) -> dict[str, Any]:
    return node_env.local_stack_config(cluster.storage.pool.name)


@pytest.fixture(scope="module")
def storage_class(cluster: LocalCluster) -> str:
    return node_env.zfs_storage_class(cluster.kube(), cluster.storage.pool.name)


@pytest.fixture(scope="module")
def parents(cluster: LocalCluster, config: dict[str, Any], storage_class: str) -> dict[str, Path]:
    """Each cache's generation-1 parent claim, as the program makes it, with a marker file
    written into its dataset by the host's root; cache -> the dataset's mountpoint."""
    kube = cluster.kube()
    found: dict[str, Path] = {}
    for cache, spec in config["caches"].items():
        namespace = spec["namespace"]
        if not kube.get("Namespace", namespace):
            kube.create("Namespace", {"apiVersion": "v1", "kind": "Namespace",
                                      "metadata": {"name": namespace, "labels": RESTRICTED}})  # fmt: skip
        claim = c.generation_name(cache, 1)
        kube.create("PersistentVolumeClaim", {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim, "namespace": namespace},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                     "resources": {"requests": {"storage": spec["size"]}}},
        })  # fmt: skip
        dataset = dataset_of(cluster.client(), cluster.storage.pool.name, namespace, claim)
        found[cache] = mountpoint(dataset)
        (found[cache] / MARKER).write_text(f"{cache}\n")
    wait_for("default service account",
             lambda: kube.get("ServiceAccount", "default", namespace))  # fmt: skip
    return found


def phase(client: Client, namespace: str, name: str) -> str:
    try:
        pod = client.get(Pod, name, namespace=namespace)
    except ApiError:
        return ""
    return str(pod.status.phase if pod.status else "")


def dataset_of(client: Client, pool: str, namespace: str, claim: str) -> str:
    """The ZFS dataset behind a bound claim (the driver names it after the PV)."""
    pvc = wait_for(
        f"claim {claim} bound",
        lambda: (
            p
            if (p := client.get(PersistentVolumeClaim, claim, namespace=namespace)).spec
            and p.spec.volumeName
            else None
        ),
    )
    assert pvc.spec is not None
    return f"{pool}/{pvc.spec.volumeName}"


def mountpoint(dataset: str) -> Path:
    return Path(zfs("get", "-H", "-o", "value", "mountpoint", dataset).stdout.strip())


def container_log(cluster: LocalCluster, namespace: str, pod: str, uid: str, container: str) -> str:
    """The container's log as the kubelet wrote it (one dir per pod uid: names recur)."""
    assert cluster.node is not None
    logs = sorted(
        (cluster.node.dir / "pod-logs").glob(f"{namespace}_{pod}_{uid}/{container}/*.log")
    )
    assert logs, f"no log of {namespace}/{pod}/{container}"
    return "\n".join(line.split(" ", 3)[3] for line in logs[-1].read_text().splitlines())


def run_job(cluster: LocalCluster, namespace: str, runner: str, script: str) -> tuple[str, str]:
    """prepare-job from the runner pod's view; the job pod's phase when done and its log."""
    assert cluster.node is not None
    client = cluster.client()
    view = node_env.hook_view(cluster.control_plane, cluster.node, namespace, runner)
    created = hook_double.prepare_job(
        view, image=JOB_IMAGE, entry_point="/bin/sh", entry_point_args=["-c", script]
    )
    name = job_pod_name(runner)
    done = wait_for(
        f"job pod {name} done",
        lambda: p if (p := phase(client, namespace, name)) in ("Succeeded", "Failed") else None,
    )
    log = container_log(cluster, namespace, name, meta(created)["uid"], HOOK_JOB_CONTAINER)
    return done, log


def delete_pod(client: Client, namespace: str, name: str) -> None:
    client.delete(Pod, name, namespace=namespace, grace_period=1)
    wait_for(f"pod {name} gone", lambda: not phase(client, namespace, name))


# --- registration ------------------------------------------------------------------------------


def test_the_driver_registers_with_the_kubelet_under_its_topology_key(
    cluster: LocalCluster,
) -> None:
    client = cluster.client()
    csi_node = client.get(CSINode, NODE_NAME)
    assert csi_node.spec is not None
    drivers = {d.name: d for d in csi_node.spec.drivers}
    assert set(drivers) == {c.OPENEBS_ZFS_CSI_DRIVER}
    driver = drivers[c.OPENEBS_ZFS_CSI_DRIVER]
    assert driver.nodeID == NODE_NAME
    assert c.OPENEBS_NODE_TOPOLOGY_KEY in (driver.topologyKeys or [])
    node = client.get(Node, NODE_NAME)
    assert node.metadata is not None and node.metadata.labels is not None
    # The kubelet labels the node with the driver's topology (what allowedTopologies match).
    assert node.metadata.labels[c.OPENEBS_NODE_TOPOLOGY_KEY] == NODE_NAME


# --- the local stack's caches in job pods -----------------------------------------------------


def _caches_of(config: dict[str, Any], scale_set: str) -> list[str]:
    return list(config["scaleSets"][scale_set].get("caches") or [])


def _template(config: dict[str, Any], scale_set: str, storage_class: str) -> dict[str, Any]:
    """The program's hook template for a scale set of the local stack (its caches' clones)."""
    clones = [
        CacheMount(
            cache=cache,
            claim=c.generation_name(cache, 1),
            size=config["caches"][cache]["size"],
            mount_path=config["caches"][cache]["mountPath"],
            storage_class=storage_class,
            env=config["caches"][cache].get("env") or {},
        )
        for cache in _caches_of(config, scale_set)
    ]
    return hook_template(scale_set, clones)


def test_every_scale_sets_job_pod_mounts_its_clones_writable_and_isolated(
    cluster: LocalCluster, config: dict[str, Any], storage_class: str, parents: dict[str, Path]
) -> None:
    assert cluster.node is not None
    client, kube, node = cluster.client(), cluster.kube(), cluster.node
    with_clones = [s for s in config["scaleSets"] if _caches_of(config, s)]
    assert with_clones, "the local stack has scale sets with caches"
    for scale_set in with_clones:
        namespace = config["scaleSets"][scale_set]["namespace"]
        runner = node_env.runner_pod(
            kube, node, namespace, _template(config, scale_set, storage_class), name=scale_set
        )
        wait_for(f"runner {runner} Running", lambda r=runner, ns=namespace: phase(client, ns, r)
                 == "Running")  # fmt: skip
        paths = [config["caches"][cache]["mountPath"] for cache in _caches_of(config, scale_set)]
        script = "; ".join(
            ["set -e", "id -u"]
            + [f"cat {p}/{MARKER}; echo {scale_set} > {p}/written-by-job; ls -ldn {p}"
               for p in paths]
        )  # fmt: skip
        done, log = run_job(cluster, namespace, runner, script)
        assert done == "Succeeded", log
        lines = log.splitlines()
        assert lines[0] == str(c.JOB_UID)
        for cache in _caches_of(config, scale_set):
            assert cache in lines  # the parent's marker, seen in the clone
        # Each clone's root has the pod's fsGroup (the kubelet's OnRootMismatch change).
        roots = [line.split() for line in lines if line.startswith("d")]
        assert [r[3] for r in roots] == [str(c.RUNNER_GID)] * len(paths), log
        job = job_pod_name(runner)
        # The job wrote to its clones only: the parents and the next job's clones lack it.
        for cache in _caches_of(config, scale_set):
            assert (parents[cache] / MARKER).exists()
            assert not (parents[cache] / "written-by-job").exists()
        delete_pod(client, namespace, job)
        checks = [f"test -f {p}/{MARKER} && test ! -e {p}/written-by-job" for p in paths]
        done, log = run_job(cluster, namespace, runner, " && ".join(checks) + " && echo clean")
        assert (done, log.splitlines()[-1:]) == ("Succeeded", ["clean"]), log
        delete_pod(client, namespace, job)
        delete_pod(client, namespace, runner)
    # Unpublished with the pods: no clone stays mounted in the kubelet's pod dirs.
    pods_dir = node.kubelet_root / "pods"
    assert [p for p in mount_points_under(pods_dir) if "kubernetes.io~csi" in p] == []


def test_parents_are_unchanged_by_the_jobs(parents: dict[str, Path]) -> None:
    for parent in parents.values():
        assert sorted(p.name for p in parent.iterdir()) == [MARKER]


def _volume_pod(namespace: str, name: str, claim: str, script: str, read_only: bool) -> Any:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "restartPolicy": "Never", "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": c.JOB_UID,
                                "runAsGroup": c.JOB_GID, "fsGroup": c.RUNNER_GID,
                                "fsGroupChangePolicy": "OnRootMismatch",
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "main", "image": JOB_IMAGE, "command": ["/bin/sh", "-c", script],
                            "securityContext": node_env.RESTRICTED_CONTAINER,
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim,
                                                                    "readOnly": read_only}}],
        },
    }  # fmt: skip


def test_a_read_only_claim_is_published_read_only(
    cluster: LocalCluster, storage_class: str, parents: dict[str, Path]
) -> None:
    kube, client = cluster.kube(), cluster.client()
    namespace = "arc-runners"
    kube.create("PersistentVolumeClaim", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "ro-data", "namespace": namespace},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                 "resources": {"requests": {"storage": "1Gi"}}},
    })  # fmt: skip
    writer = kube.create("Pod", _volume_pod(namespace, "writer", "ro-data",
                                            "echo hello > /data/f", read_only=False))  # fmt: skip
    wait_for("writer done", lambda: phase(client, namespace, "writer") in ("Succeeded", "Failed"))
    assert phase(client, namespace, "writer") == "Succeeded"
    script = (
        "cat /data/f; if touch /data/g 2>/dev/null; then echo writable; else echo refused; fi; "
        "sleep 600"
    )
    reader = kube.create("Pod", _volume_pod(namespace, "reader", "ro-data", script, read_only=True))
    uid = meta(reader)["uid"]
    wait_for("reader running", lambda: phase(client, namespace, "reader") == "Running")
    wait_for(
        "the reader's two lines",
        lambda: len(_log_or_empty(cluster, namespace, "reader", uid).splitlines()) == 2,
    )
    assert container_log(cluster, namespace, "reader", uid, "main").splitlines() == [
        "hello",
        "refused",
    ]
    # The driver's bind mount itself is read-only (not only the container's view of it).
    target = f"/pods/{uid}/volumes/kubernetes.io~csi/"
    options = [
        line.split()[5]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if target in line.split()[4]
    ]
    assert options and all(o.split(",")[0] == "ro" for o in options), options
    for pod in (writer, reader):
        delete_pod(client, namespace, meta(pod)["name"])


def _log_or_empty(cluster: LocalCluster, namespace: str, pod: str, uid: str) -> str:
    try:
        return container_log(cluster, namespace, pod, uid, "main")
    except AssertionError:  # not written yet
        return ""
