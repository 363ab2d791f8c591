"""Set-up shared by the node e2e tests and the node benchmark: a runner pod and its hook's view.

The runner pod is what the scale set chart renders in kubernetes mode (hook env, template
ConfigMap mounted as a directory, the chart's kube-mode Role, the ``work`` ephemeral volume of
the local stack's ZFS class, which the CSI driver double's Node service mounts).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from lightkube import ApiError
from lightkube.resources.rbac_authorization_v1 import Role, RoleBinding

from components import constants as c
from components.config import load_stack_file, validate_config
from components.hook_template import hook_template_yaml
from localcluster import hook_double
from localcluster.arc_double import ArcControllerDouble
from localcluster.controlplane import LocalControlPlane
from localcluster.harness import LocalCluster
from localcluster.kube import Kube, is_conflict
from localcluster.node import NODE_NAME, LocalNode, NodeUnavailableError

__all__ = [
    "RESTRICTED_CONTAINER",
    "RESTRICTED_NAMESPACE_LABELS",
    "hook_view",
    "local_claim",
    "local_stack_config",
    "local_storage_class",
    "node_cluster",
    "runner_pod",
    "wait_for",
    "zfs_storage_class",
]

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]

RESTRICTED_NAMESPACE_LABELS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


def wait_for(what: str, check: Callable[[], T | None], timeout: float, interval: float) -> T:
    """Poll ``check`` every ``interval`` seconds until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def local_stack_config(pool: str) -> dict[str, Any]:
    """The shipped local stack's config (Pulumi.local.yaml) on ``pool`` (the cluster's, named
    per process), without its sealed token (tests set their own)."""
    document = yaml.safe_load((REPO / "Pulumi.local.yaml").read_text())
    config = {k.partition(":")[2]: v for k, v in document["config"].items()}
    del config["github"]["credentials"]["token"]
    config["storage"]["poolName"] = pool
    return config


@contextlib.contextmanager
def node_cluster(state_dir: Path) -> Iterator[LocalCluster]:
    """A started cluster with the local node and the ARC controller double, stopped at the end.

    A node that cannot start fails the caller with one line naming the missing piece (never a
    skip, never a traceback).
    """
    cluster = LocalCluster(state_dir, node=True)
    missing = ""
    try:
        cluster.start()
    except NodeUnavailableError as exc:
        missing = str(exc)
    if missing:
        pytest.fail(f"the local node cannot run pods: {missing}", pytrace=False)
    double = ArcControllerDouble(cluster.control_plane.kubeconfig_for("arc-double"), interval=0.5)
    double.start()
    try:
        yield cluster
    finally:
        double.stop()
        cluster.stop()


def local_claim(kube: Kube, node: LocalNode, namespace: str, claim: str, path: Path) -> None:
    """A claim ``claim`` bound to a ``local`` PersistentVolume at ``path`` on the node."""
    kube.create("PersistentVolume", {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": f"{namespace}-{claim}"},
        "spec": {
            "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
            "storageClassName": "local-work", "local": {"path": str(path)},
            "claimRef": {"namespace": namespace, "name": claim},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [NODE_NAME]}]}]}},
        },
    })  # fmt: skip
    kube.create("PersistentVolumeClaim", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": claim, "namespace": namespace},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-work",
                 "volumeName": f"{namespace}-{claim}",
                 "resources": {"requests": {"storage": "1Gi"}}},
    })  # fmt: skip


def local_storage_class() -> str:
    """The local stack's cache StorageClass on the node (Pulumi.local.yaml's storage config)."""
    return validate_config(load_stack_file(REPO / "Pulumi.local.yaml")).storage.storage_class_for(
        NODE_NAME
    )


def zfs_storage_class(kube: Kube, pool: str) -> str:
    """For a cluster without the program: the class the program makes on the node (ZFS
    datasets of ``pool`` via the driver double, ``shared: yes``), named as the local stack's."""
    name = local_storage_class()
    kube.ensure("StorageClass", {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": name},
        "provisioner": c.OPENEBS_ZFS_CSI_DRIVER,
        "parameters": {"poolname": pool, "fstype": "zfs", "shared": "yes"},
        "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate",
        "allowedTopologies": [{"matchLabelExpressions": [
            {"key": c.OPENEBS_NODE_TOPOLOGY_KEY, "values": [NODE_NAME]}]}],
    })  # fmt: skip
    return name


def _ensure(kube: Kube, resource: Any) -> None:
    try:
        kube.client.create(resource)
    except ApiError as exc:
        if not is_conflict(exc):
            raise


def runner_pod(
    kube: Kube,
    node: LocalNode,
    namespace: str,
    template: dict[str, Any],
    *,
    name: str = "runner-e2e",
    work_class: str | None = None,
) -> str:
    """A runner pod as the scale set chart renders one in kubernetes mode.

    Its ``work`` volume is the chart's ephemeral volume (``kubernetesModeWorkVolumeClaim``) of
    ``work_class`` (default: the local stack's ZFS class, as Pulumi.local.yaml sets it), so
    the claim ``<runner>-work`` the hook shares with the job pod is a ZFS dataset mounted by
    the CSI driver double. Several runners may share a namespace (one template each).
    """
    runner = name
    kube.ensure("ServiceAccount", {"apiVersion": "v1", "kind": "ServiceAccount",
                                   "metadata": {"name": "kube-mode", "namespace": namespace}})  # fmt: skip
    # The chart's <name>-gha-rs-kube-mode Role (hook 0.7's requiredPermissions).
    _ensure(kube, Role.from_dict({
        "metadata": {"name": "kube-mode", "namespace": namespace},
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "create", "delete"]},
            {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get", "create"]},
            {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "create", "delete"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "create", "delete"]},
        ],
    }))  # fmt: skip
    _ensure(kube, RoleBinding.from_dict({
        "metadata": {"name": "kube-mode", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "kube-mode"},
        "subjects": [{"kind": "ServiceAccount", "name": "kube-mode", "namespace": namespace}],
    }))  # fmt: skip
    config_map = f"{runner}-hook-template"
    kube.create("ConfigMap", {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": config_map, "namespace": namespace},
        "data": {c.HOOK_TEMPLATE_KEY: hook_template_yaml(template)},
    })  # fmt: skip
    work_claim = {"accessModes": ["ReadWriteOnce"],
                  "storageClassName": work_class or local_storage_class(),
                  "resources": {"requests": {"storage": "1Gi"}}}  # fmt: skip
    kube.create("Pod", {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": runner, "namespace": namespace},
        "spec": {
            "serviceAccountName": "kube-mode",
            "restartPolicy": "Never",
            "nodeSelector": {"kubernetes.io/hostname": NODE_NAME},
            "securityContext": {"runAsNonRoot": True, "runAsUser": c.RUNNER_UID,
                                "runAsGroup": c.RUNNER_GID, "fsGroup": c.RUNNER_GID,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "runner", "image": c.RUNNER_IMAGE, "command": ["/home/runner/run.sh"],
                "securityContext": RESTRICTED_CONTAINER,
                "env": [
                    {"name": "ACTIONS_RUNNER_CONTAINER_HOOKS", "value": c.HOOK_ENTRYPOINT},
                    {"name": "ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE",
                     "value": c.HOOK_TEMPLATE_FILE},
                    {"name": "ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER", "value": "true"},
                ],
                "volumeMounts": [
                    {"name": "work", "mountPath": c.RUNNER_WORK_DIR},
                    {"name": c.HOOK_TEMPLATE_VOLUME, "mountPath": c.HOOK_TEMPLATE_DIR,
                     "readOnly": True},
                ],
            }],
            "volumes": [
                {"name": "work", "ephemeral": {"volumeClaimTemplate": {"spec": work_claim}}},
                {"name": c.HOOK_TEMPLATE_VOLUME, "configMap": {"name": config_map}},
            ],
        },
    })  # fmt: skip
    return runner


def hook_view(plane: LocalControlPlane, node: LocalNode, namespace: str, runner: str) -> Any:
    return hook_double.runner_view(
        plane.client(),
        namespace,
        runner,
        server=plane.server,
        ca_file=plane.pki.ca_cert,
        kubelet_root=node.kubelet_root,
    )
