"""The program through the real Pulumi CLI and engine against a real kube-apiserver.

One stack goes through its whole life: a bad config is refused before anything exists, a
preview of the full stack mutates nothing, ``up`` creates every object (and every claim is a
real dataset in the session's pool), a second ``up`` is a no-op, a config change is an
in-place update, ``destroy`` leaves nothing behind.
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
from lightkube.resources.core_v1 import (
    ConfigMap,
    Namespace,
    PersistentVolume,
    PersistentVolumeClaim,
    Secret,
)

from components import constants as c
from tests.e2e.pulumi_cli import ROOT, PulumiProject

pytestmark = pytest.mark.e2e

TOKEN = "ghp_e2eSecretTokenValue0123456789"
AutoscalingRunnerSet = create_namespaced_resource(
    "actions.github.com", "v1alpha1", "AutoscalingRunnerSet", "autoscalingrunnersets"
)


def local_stack_config(local_cluster: Any) -> dict[str, Any]:
    """The shipped local stack's config, minus its sealed secret (set per test), on the
    session's pool (named per process: one zfs-fuse daemon serves the machine's pools)."""
    document = yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text())
    config = {k.partition(":")[2]: v for k, v in document["config"].items()}
    del config["github"]["credentials"]["token"]
    config["storage"]["poolName"] = local_cluster.storage.pool.name
    return config


@pytest.fixture(scope="module")
def project(
    local_cluster: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PulumiProject]:
    project = PulumiProject.create(
        tmp_path_factory.mktemp("program"), Path(local_cluster.kubeconfig)
    )
    yield project
    project.destroy(check=False)


@pytest.fixture(scope="module")
def client(local_cluster: Any) -> Client:
    return local_cluster.client()


def test_bad_config_fails_before_any_object(project: PulumiProject, local_cluster: Any) -> None:
    config = local_stack_config(local_cluster)
    config["caches"]["gcc12"]["size"] = "10GB"
    config["scaleSets"]["local-linux"]["maxRunners"] = 0
    project.set_config(config, {"github.credentials.token": TOKEN})
    mark = local_cluster.audit.mark()
    for result in (project.preview(check=False), project.up(check=False)):
        assert result.returncode != 0
        assert "caches.gcc12.size: '10GB' is not a Kubernetes quantity" in result.output
        assert "scaleSets.local-linux.maxRunners" in result.output
        assert "Traceback" not in result.output
    assert local_cluster.mutating_requests(mark) == []
    assert project.resource_count() == 0


def test_preview_of_full_stack_mutates_nothing(project: PulumiProject, local_cluster: Any) -> None:
    project.set_config(local_stack_config(local_cluster), {"github.credentials.token": TOKEN})
    mark = local_cluster.audit.mark()
    result = project.preview()
    assert "local-gcc12-builder" in result.output
    assert TOKEN not in result.output
    assert local_cluster.mutating_requests(mark) == []


def test_up_creates_every_object(
    project: PulumiProject, client: Client, local_cluster: Any
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
    pool = local_cluster.storage.pool.name
    datasets = {d.name: d for d in local_cluster.storage.pool.datasets()}
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
    project: PulumiProject, client: Client, local_cluster: Any
) -> None:
    config = local_stack_config(local_cluster)
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
    assert list(client.list(AutoscalingRunnerSet, namespace="*")) == []
    remaining = [
        n.metadata.name
        for n in client.list(Namespace)
        if n.metadata and n.metadata.name in ("arc-runners", "arc-systems")
    ]
    assert remaining == []
