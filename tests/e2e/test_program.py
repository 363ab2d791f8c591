"""The program through the real Pulumi CLI and engine against a real kube-apiserver.

One stack goes through its whole life: a bad config is refused before anything exists, a
preview of the full stack mutates nothing, ``up`` creates every object (and every claim is a
real dataset in the session's pool), a second ``up`` is a no-op, a config change is an
in-place update, ``destroy`` leaves nothing behind. The stack runs on a cluster with the local
node and the ARC controller double: ``up`` installs the ARC CRDs with the controller chart, then
the AutoscalingRunnerSets, and awaits the controller's Deployment; ``destroy`` finishes because
the double cleans each AutoscalingRunnerSet up and takes its finalizer off.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import Client
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.core_v1 import (
    ConfigMap,
    Namespace,
    PersistentVolume,
    PersistentVolumeClaim,
    Secret,
    ServiceAccount,
)

from components import constants as c
from localcluster.harness import LocalCluster
from tests.e2e import node_env
from tests.e2e.pulumi_cli import PulumiProject

pytestmark = pytest.mark.e2e

TOKEN = "ghp_e2eSecretTokenValue0123456789"
AutoscalingRunnerSet = create_namespaced_resource(
    "actions.github.com", "v1alpha1", "AutoscalingRunnerSet", "autoscalingrunnersets"
)


def local_stack_config(cluster: LocalCluster) -> dict[str, Any]:
    """The shipped local stack's config, minus its sealed secret (set per test), on the
    cluster's pool."""
    return node_env.local_stack_config(cluster.storage.pool.name)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A cluster with the local node and the ARC controller double: ``up`` awaits the
    controller's Deployment, which only a kubelet makes ready."""
    with node_env.node_cluster(tmp_path_factory.mktemp("program-cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def project(
    cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PulumiProject]:
    project = PulumiProject.create(tmp_path_factory.mktemp("program"), Path(cluster.kubeconfig))
    yield project
    project.destroy(check=False)


def test_bad_config_fails_before_any_object(project: PulumiProject, cluster: LocalCluster) -> None:
    config = local_stack_config(cluster)
    config["caches"]["gcc12"]["size"] = "10GB"
    config["scaleSets"]["local-linux"]["maxRunners"] = 0
    project.set_config(config, {"github.credentials.token": TOKEN})
    mark = cluster.audit.mark()
    for result in (project.preview(check=False), project.up(check=False)):
        assert result.returncode != 0
        assert "caches.gcc12.size: '10GB' is not a Kubernetes quantity" in result.output
        assert "scaleSets.local-linux.maxRunners" in result.output
        assert "Traceback" not in result.output
    assert cluster.mutating_requests(mark) == []
    assert project.resource_count() == 0


def test_preview_of_full_stack_mutates_nothing(
    project: PulumiProject, cluster: LocalCluster
) -> None:
    project.set_config(local_stack_config(cluster), {"github.credentials.token": TOKEN})
    mark = cluster.audit.mark()
    result = project.preview()
    assert "local-gcc12-builder" in result.output
    assert TOKEN not in result.output
    assert cluster.mutating_requests(mark) == []


def test_up_creates_every_object(
    project: PulumiProject, client: Client, cluster: LocalCluster
) -> None:
    result = project.up()
    assert TOKEN not in result.output
    # Hook ConfigMap: clones gen 1 at exactly the cache's size.
    cm = client.get(ConfigMap, c.hook_template_name("local-linux"), namespace="arc-runners")
    assert (
        cm.metadata and cm.metadata.labels and cm.metadata.labels[c.LABEL_HOOK_TEMPLATE] == "true"
    )
    template = yaml.safe_load((cm.data or {})[c.HOOK_TEMPLATE_KEY])
    claims = {
        v["name"]: v["ephemeral"]["volumeClaimTemplate"]["spec"]
        for v in template["spec"]["volumes"]
    }
    assert claims["cache-gcc12"]["dataSource"]["name"] == "gcc12-gen-1"
    assert claims["cache-gcc12"]["resources"]["requests"]["storage"] == "10Gi"
    assert claims["cache-clang17"]["resources"]["requests"]["storage"] == "5Gi"
    assert template["spec"]["automountServiceAccountToken"] is False
    # Parent and builder volume are bound, on the cache's node, at the same size.
    volumes = {}
    for name in ("gcc12-gen-1", "gcc12-work-1"):
        pvc = client.get(PersistentVolumeClaim, name, namespace="arc-runners")
        assert pvc.status and pvc.status.phase == "Bound", name
        assert pvc.spec and pvc.spec.volumeName
        volumes[name] = pvc.spec.volumeName
        pv = client.get(PersistentVolume, pvc.spec.volumeName)
        assert pv.spec and pv.spec.capacity == {"storage": "10Gi"}
        node_terms = json.dumps(pv.spec.nodeAffinity.to_dict() if pv.spec.nodeAffinity else {})
        assert "local-zfs-node" in node_terms
    # In the pool: one dataset each; the builder volume a ZFS clone of gen 1 (upstream's
    # PVC-to-PVC clone snapshots <srcPV>@<clonePV> first).
    pool = cluster.storage.pool.name
    datasets = {d.name: d for d in cluster.storage.pool.datasets()}
    gen1, work1 = (f"{pool}/{volumes[n]}" for n in ("gcc12-gen-1", "gcc12-work-1"))
    assert gen1 in datasets and datasets[gen1].origin is None
    assert datasets[work1].origin == f"{gen1}@{volumes['gcc12-work-1']}"
    # Runner scale sets: node pinning, hook template mounted as a directory, secret by name.
    ars = client.get(AutoscalingRunnerSet, "local-linux", namespace="arc-runners")
    spec = ars["spec"] if isinstance(ars, dict) else ars.spec  # type: ignore[index]
    assert spec["githubConfigSecret"] == c.GITHUB_SECRET_NAME
    assert spec["template"]["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "local-zfs-node"}
    runner = spec["template"]["spec"]["containers"][0]
    assert {
        "name": c.HOOK_TEMPLATE_VOLUME,
        "mountPath": c.HOOK_TEMPLATE_DIR,
        "readOnly": True,
    } in runner["volumeMounts"]
    assert TOKEN not in json.dumps(spec)
    # The ARC CRDs came with the controller chart in this same `up` (applied by the provider).
    crd = client.get(CustomResourceDefinition, "autoscalingrunnersets.actions.github.com")
    managers = {f.manager or "" for f in (crd.metadata.managedFields if crd.metadata else []) or []}
    assert any(m.startswith("pulumi-kubernetes-") for m in managers), managers
    # The chart's cleanup-protection finalizer on what the controller needs to clean up (the
    # destroy below shows the scale set goes first and its cleanup lifts it), and the
    # controller's own on the scale set (the double adds it as the real controller does).
    sa = client.get(ServiceAccount, "local-linux-gha-rs-kube-mode", namespace="arc-runners")
    assert sa.metadata and sa.metadata.finalizers == [c.CLEANUP_PROTECTION_FINALIZER]

    def scale_set_finalizers() -> list[str]:
        ars = client.get(AutoscalingRunnerSet, "local-linux", namespace="arc-runners")
        return list(ars.to_dict()["metadata"].get("finalizers") or [])

    node_env.wait_for(
        "the controller's finalizer on the scale set",
        lambda: "autoscalingrunnerset.actions.github.com/finalizer" in scale_set_finalizers(),
        timeout=30,
        interval=0.25,
    )
    # Pod Security on the runner namespace; the token only in the Secret.
    ns = client.get(Namespace, "arc-runners")
    assert ns.metadata and ns.metadata.labels
    assert ns.metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"
    secret = client.get(Secret, c.GITHUB_SECRET_NAME, namespace="arc-runners")
    assert secret.data and "github_token" in secret.data
    assert TOKEN not in project.export()
    assert project.outputs()["parent_claims"] == {
        "gcc12": "gcc12-gen-1",
        "clang17": "clang17-gen-1",
    }


def test_second_up_is_a_no_op(project: PulumiProject) -> None:
    project.preview("--expect-no-changes")
    project.up("--expect-no-changes")


def test_config_change_is_an_in_place_update(
    project: PulumiProject, client: Client, cluster: LocalCluster
) -> None:
    config = local_stack_config(cluster)
    changed = copy.deepcopy(config)
    changed["scaleSets"]["local-linux"]["maxRunners"] = 7
    # A new hook template content (as a promotion makes) updates the ConfigMap in place.
    changed["caches"]["clang17"]["env"]["CCACHE_DIR"] = "/CONAN_HOME_CLANG/ccache"
    project.set_config(changed, {"github.credentials.token": TOKEN})
    steps = project.preview_steps()
    ops = {(s["op"], s["urn"].rsplit("::", 1)[-1]) for s in steps if s["op"] != "same"}
    assert ("update", "e2e-hook-local-linux-config-map") in ops, ops
    assert any(name.endswith("AutoscalingRunnerSet") or "local-linux" in name for _, name in ops)
    assert all(op == "update" for op, _ in ops), ops
    project.up()
    ars = client.get(AutoscalingRunnerSet, "local-linux", namespace="arc-runners")
    spec = ars["spec"] if isinstance(ars, dict) else ars.spec  # type: ignore[index]
    assert spec["maxRunners"] == 7
    cm = client.get(ConfigMap, c.hook_template_name("local-linux"), namespace="arc-runners")
    assert "CCACHE_DIR" in (cm.data or {})[c.HOOK_TEMPLATE_KEY]


def test_destroy_leaves_nothing_behind(project: PulumiProject, client: Client) -> None:
    project.destroy()
    assert project.resource_count() == 0
    selector = {c.LABEL_PART_OF: c.PART_OF}
    assert list(client.list(ConfigMap, namespace="*", labels=selector)) == []
    assert list(client.list(PersistentVolumeClaim, namespace="*", labels=selector)) == []
    # The controller chart installed the ARC CRDs, so destroy removed them (and every
    # AutoscalingRunnerSet) once the scale sets were cleaned up.
    arc_crds = [
        crd.metadata.name
        for crd in client.list(CustomResourceDefinition)
        if crd.metadata and crd.metadata.name and crd.metadata.name.endswith(".actions.github.com")
    ]
    assert arc_crds == []
    remaining = [
        n.metadata.name
        for n in client.list(Namespace)
        if n.metadata and n.metadata.name in ("arc-runners", "arc-systems")
    ]
    assert remaining == []
