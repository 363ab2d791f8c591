"""kubernetes-novolume (hook 0.8) on the local node: job pods placed by the scheduler.

A novolume scale set's runner pod is what the program's chart values render for that mode
(``scale_set_values(container_mode="kubernetes-novolume")`` plus what the chart adds: the
pod name, ``ACTIONS_RUNNER_IMAGE`` and the kube-mode service account, whose Role has no batch
Jobs in this mode), not pinned to any node. From its view the hook double creates hook 0.8's
job pod (``createJobPod`` at runner-container-hooks v0.8.1: ``fs-init``, emptyDir volumes,
no node) merged with the program's hook template. With a real ZFS clone (the program's
Immediate StorageClass on the node, the CSI driver double's Node service mounting it) the
scheduler places the job pod from the clone PV's ``openebs.io/nodeid`` affinity alone. The
other tests mount a claim bound to a ``local`` PersistentVolume whose node affinity names a
node, so that one on another node shows the affinity decides (the job pod stays
unschedulable), and a container step runs. Under Pod Security ``restricted`` the API server
refuses the job pod for its ``fs-init`` container, which is why the config refuses that
combination (``scaleSets.<name>.containerMode``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from lightkube import ApiError, Client
from lightkube.resources.core_v1 import PersistentVolume, PersistentVolumeClaim, Pod
from lightkube.resources.rbac_authorization_v1 import Role, RoleBinding

from components import constants as c
from components.hook_template import (
    CacheMount,
    hook_template,
    hook_template_yaml,
    pod_security_labels,
)
from components.runner_scale_set import scale_set_values
from localcluster import hook_double
from localcluster.harness import LocalCluster
from localcluster.images import JOB_IMAGE
from localcluster.kube import Kube, meta
from localcluster.node import NODE_NAME, LocalNode
from localcluster.zfs_pool import zfs
from policy.arc_policy.hook_merge import FS_INIT_CONTAINER, HOOK_0_8, job_pod_name
from tests.e2e import node_env

pytestmark = pytest.mark.e2e

T = TypeVar("T")
SCALE_SET = "nv"
CACHE_MOUNT = "/CONAN_HOME"


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 90.0) -> T:
    return node_env.wait_for(what, check, timeout, interval=0.2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with node_env.node_cluster(tmp_path_factory.mktemp("node-novolume")) as cluster:
        yield cluster


_counter = iter(range(1000))


def _namespace(kube: Kube, level: str) -> str:
    name = f"novolume-{level}-{next(_counter)}"
    kube.create("Namespace", {"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": name, "labels": pod_security_labels(level)}})  # fmt: skip
    wait_for("default service account", lambda: kube.get("ServiceAccount", "default", name))
    return name


def _cache_claim(kube: Kube, node: LocalNode, namespace: str, on_node: str) -> str:
    """A claim on a ``local`` PV holding a marker file (the cache's content), whose node
    affinity names ``on_node`` as an OpenEBS volume's names its ZFS node."""
    path = node.dir / "local-pvs" / f"{namespace}-cache"
    path.mkdir(parents=True)
    path.chmod(0o777)
    (path / "marker").write_text("from-the-parent\n")
    kube.create("PersistentVolume", {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": f"{namespace}-cache"},
        "spec": {
            "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
            "storageClassName": "local-cache", "local": {"path": str(path)},
            "claimRef": {"namespace": namespace, "name": "cache"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [on_node]}]}]}},
        },
    })  # fmt: skip
    kube.create("PersistentVolumeClaim", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "cache", "namespace": namespace},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-cache",
                 "volumeName": f"{namespace}-cache",
                 "resources": {"requests": {"storage": "1Gi"}}},
    })  # fmt: skip
    return "cache"


def cache_template(claim: str) -> dict[str, Any]:
    """The program's hook template mounting the claim ``claim`` at the cache's path."""
    mount = CacheMount(
        cache="gcc12", claim=claim, size="1Gi", storage_class="local-cache",
        mount_path=CACHE_MOUNT, builder=True,
    )  # fmt: skip
    return hook_template(SCALE_SET, [mount])


def novolume_runner_pod(
    kube: Kube, namespace: str, template: dict[str, Any], name: str = "runner-nv"
) -> str:
    """A runner pod as the program's novolume values and the chart render it (unpinned)."""
    values = scale_set_values(
        name=SCALE_SET,
        namespace=namespace,
        github_config_url="https://github.com/example-org",
        runner_group="default",
        min_runners=0,
        max_runners=1,
        runner_image=c.RUNNER_IMAGE,
        node=NODE_NAME,
        controller_namespace="arc-systems",
        controller_service_account="arc-gha-rs-controller",
        work_volume_size="1Gi",
        work_volume_storage_class=None,
        container_mode=c.CONTAINER_MODE_NOVOLUME,
    )
    kube.create("ServiceAccount", {"apiVersion": "v1", "kind": "ServiceAccount",
                                   "metadata": {"name": "kube-mode", "namespace": namespace}})  # fmt: skip
    rbac: Any = kube.client
    # The chart's <name>-gha-rs-kube-mode Role in kubernetes-novolume mode (no batch Jobs).
    rbac.create(Role.from_dict({
        "metadata": {"name": "kube-mode", "namespace": namespace},
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "create", "delete"]},
            {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get", "create"]},
            {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "create", "delete"]},
        ],
    }))  # fmt: skip
    rbac.create(RoleBinding.from_dict({
        "metadata": {"name": "kube-mode", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "kube-mode"},
        "subjects": [{"kind": "ServiceAccount", "name": "kube-mode", "namespace": namespace}],
    }))  # fmt: skip
    kube.create("ConfigMap", {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": c.hook_template_name(SCALE_SET), "namespace": namespace},
        "data": {c.HOOK_TEMPLATE_KEY: hook_template_yaml(template)},
    })  # fmt: skip
    spec = copy.deepcopy(values["template"]["spec"])
    (runner,) = spec["containers"]
    runner["env"] += [
        {"name": "ACTIONS_RUNNER_POD_NAME",
         "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "ACTIONS_RUNNER_IMAGE", "value": runner["image"]},
    ]  # fmt: skip
    spec.update(serviceAccountName="kube-mode", restartPolicy="Never")
    kube.create("Pod", {"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": name, "namespace": namespace}, "spec": spec})  # fmt: skip
    return name


def pod_phase(client: Client, namespace: str, name: str) -> str:
    pod = client.get(Pod, name, namespace=namespace)
    return str(pod.status.phase if pod.status else "")


def wait_phase(client: Client, namespace: str, name: str, *phases: str) -> str:
    return wait_for(
        f"pod {namespace}/{name} in {phases}",
        lambda: p if (p := pod_phase(client, namespace, name)) in phases else None,
    )


def container_log(node: LocalNode, namespace: str, pod: str, container: str) -> list[str]:
    logs = sorted((node.dir / "pod-logs").glob(f"{namespace}_{pod}_*/{container}/*.log"))
    assert logs, f"no log of {namespace}/{pod}/{container}"
    return [line.split(" ", 3)[3] for line in logs[-1].read_text().splitlines()]


def _runner_view(cluster: LocalCluster, node: LocalNode, namespace: str, runner: str) -> Any:
    return node_env.hook_view(cluster.control_plane, node, namespace, runner)


JOB_SCRIPT = (
    "id -u; cat /CONAN_HOME/marker; echo job > /CONAN_HOME/from-job; "
    "test -d /__w/repo/repo && echo workspace-made-by-fs-init; ls /__e"
)


def test_baseline_job_pod_is_placed_by_its_volume_and_runs(
    cluster: LocalCluster, client: Client, kube: Kube, node: LocalNode
) -> None:
    namespace = _namespace(kube, "baseline")
    claim = _cache_claim(kube, node, namespace, NODE_NAME)
    runner = novolume_runner_pod(kube, namespace, cache_template(claim))
    assert wait_phase(client, namespace, runner, "Running") == "Running"
    runner_spec = client.get(Pod, runner, namespace=namespace).to_dict()["spec"]
    assert "nodeSelector" not in runner_spec and "affinity" not in runner_spec
    view = _runner_view(cluster, node, namespace, runner)
    assert view.hook is HOOK_0_8

    pod = hook_double.prepare_job(view, image=JOB_IMAGE, entry_point="/bin/sh",
                                  entry_point_args=["-c", JOB_SCRIPT])  # fmt: skip
    name = job_pod_name(runner)
    assert meta(pod)["name"] == name
    # As created by the hook: no node, fs-init from the runner image, emptyDir work volume.
    assert not pod["spec"].get("nodeName") and "affinity" not in pod["spec"]
    (init,) = pod["spec"]["initContainers"]
    assert (init["name"], init["image"]) == (FS_INIT_CONTAINER, c.RUNNER_IMAGE)
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["work"] == {"name": "work", "emptyDir": {}}
    assert wait_phase(client, namespace, name, "Succeeded", "Failed") == "Succeeded"
    assert client.get(Pod, name, namespace=namespace).spec.nodeName == NODE_NAME
    assert container_log(node, namespace, name, "job") == [
        str(c.JOB_UID), "from-the-parent", "workspace-made-by-fs-init", "node20", "node24"
    ]  # fmt: skip
    assert (node.dir / "local-pvs" / f"{namespace}-cache" / "from-job").read_text() == "job\n"

    # A container step: hook 0.8's bare step pod, with the template's volumes too.
    step = hook_double.run_container_step(
        view, image=JOB_IMAGE, entry_point="/bin/sh",
        entry_point_args=["-c", 'id -u; echo "$STEP_INPUT"; cat /CONAN_HOME/from-job'],
        env={"STEP_INPUT": "from-the-step"},
    )  # fmt: skip
    step_name = meta(step)["name"]
    assert step["kind"] == "Pod" and step_name.startswith(f"{runner}-step-")
    assert "initContainers" not in step["spec"] and not step["spec"].get("nodeName")
    assert wait_phase(client, namespace, step_name, "Succeeded", "Failed") == "Succeeded"
    assert container_log(node, namespace, step_name, "job") == [
        str(c.JOB_UID), "from-the-step", "job"
    ]  # fmt: skip


def test_a_volume_on_another_node_leaves_the_job_pod_unschedulable(
    cluster: LocalCluster, client: Client, kube: Kube, node: LocalNode
) -> None:
    namespace = _namespace(kube, "baseline")
    claim = _cache_claim(kube, node, namespace, "another-zfs-node")
    runner = novolume_runner_pod(kube, namespace, cache_template(claim))
    assert wait_phase(client, namespace, runner, "Running") == "Running"
    view = _runner_view(cluster, node, namespace, runner)
    hook_double.prepare_job(view, image=JOB_IMAGE, entry_point="/bin/sh",
                            entry_point_args=["-c", "true"])  # fmt: skip
    name = job_pod_name(runner)
    condition = wait_for(
        "the job pod's Unschedulable condition",
        lambda: next(
            (
                cond
                for cond in (client.get(Pod, name, namespace=namespace).status.conditions or [])
                if cond.type == "PodScheduled" and cond.reason == "Unschedulable"
            ),
            None,
        ),
    )
    assert "didn't match PersistentVolume's node affinity" in (condition.message or "")
    assert not client.get(Pod, name, namespace=namespace).spec.nodeName


def test_restricted_refuses_the_job_pod_for_fs_init(
    cluster: LocalCluster, client: Client, kube: Kube, node: LocalNode
) -> None:
    namespace = _namespace(kube, "restricted")
    claim = _cache_claim(kube, node, namespace, NODE_NAME)
    runner = novolume_runner_pod(kube, namespace, cache_template(claim))
    # The runner pod itself is restricted-compliant.
    assert wait_phase(client, namespace, runner, "Running") == "Running"
    view = _runner_view(cluster, node, namespace, runner)
    with pytest.raises(ApiError) as refused:
        hook_double.prepare_job(view, image=JOB_IMAGE, entry_point="/bin/sh",
                                entry_point_args=["-c", "true"])  # fmt: skip
    message = str(refused.value)
    assert 'violates PodSecurity "restricted:latest"' in message
    assert f'container "{FS_INIT_CONTAINER}"' in message
    # Only fs-init: the template gives the job container all that restricted asks.
    assert 'container "job"' not in message
    assert 'containers "job"' not in message


def _bound_volume(client: Client, namespace: str, claim: str) -> str:
    """The PV a claim is bound to (the ZFS driver names the dataset after it)."""
    return wait_for(
        f"claim {claim} bound",
        lambda: client.get(PersistentVolumeClaim, claim, namespace=namespace).spec.volumeName,
    )


def test_baseline_job_pod_is_pulled_to_the_node_by_its_zfs_clone(
    cluster: LocalCluster, client: Client, kube: Kube, node: LocalNode
) -> None:
    """The real thing: an Immediate ZFS clone of the parent, whose PV the scheduler follows."""
    namespace = _namespace(kube, "baseline")
    pool = cluster.storage.pool.name
    storage_class = node_env.zfs_storage_class(kube, pool)
    parent = c.generation_name("gcc12", 1)
    kube.create("PersistentVolumeClaim", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": parent, "namespace": namespace},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                 "resources": {"requests": {"storage": "1Gi"}}},
    })  # fmt: skip
    parent_dir = Path(
        zfs("get", "-H", "-o", "value", "mountpoint",
            f"{pool}/{_bound_volume(client, namespace, parent)}").stdout.strip()
    )  # fmt: skip
    (parent_dir / "marker").write_text("from-the-parent\n")
    clone = CacheMount("gcc12", parent, "1Gi", storage_class, CACHE_MOUNT)
    runner = novolume_runner_pod(kube, namespace, hook_template(SCALE_SET, [clone]))
    assert wait_phase(client, namespace, runner, "Running") == "Running"
    view = _runner_view(cluster, node, namespace, runner)
    script = (
        "id -u; cat /CONAN_HOME/marker; echo job > /CONAN_HOME/from-job; cat /CONAN_HOME/from-job"
    )
    pod = hook_double.prepare_job(view, image=JOB_IMAGE, entry_point="/bin/sh",
                                  entry_point_args=["-c", script])  # fmt: skip
    name = job_pod_name(runner)
    assert not pod["spec"].get("nodeName") and "affinity" not in pod["spec"]
    assert wait_phase(client, namespace, name, "Succeeded", "Failed") == "Succeeded"
    assert client.get(Pod, name, namespace=namespace).spec.nodeName == NODE_NAME
    assert container_log(node, namespace, name, "job") == [
        str(c.JOB_UID), "from-the-parent", "job"
    ]  # fmt: skip
    # What placed it: the clone's PV, bound before scheduling, requires the cache's node.
    clone_pv = client.get(PersistentVolume, _bound_volume(client, namespace, f"{name}-cache-gcc12"))
    terms = clone_pv.spec.nodeAffinity.required.nodeSelectorTerms
    assert [(e.key, e.values) for t in terms for e in t.matchExpressions] == [
        (c.OPENEBS_NODE_TOPOLOGY_KEY, [NODE_NAME])
    ]
    assert not (parent_dir / "from-job").exists()  # the write went to the clone only
