"""Every component's resources and the fields that matter, under Pulumi mocks."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
import yaml

from components import constants as c
from components.config import SecretValue, load_stack_file, validate_config
from components.hook_template import mirror_image
from components.zfs_storage import zpool_script
from policy.arc_policy.hook_merge import base_job_pod, merge_job_pod
from tests.harness import PROMOTION_TYPE, ROOT, Deployment, deploy

K8S_VERSION = "1.34.0"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"


def assert_valid(obj: dict[str, Any]) -> None:
    """Validate a Kubernetes object against the OpenAPI schema of K8S_VERSION (strict)."""
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.fixture
def minimal(minimal_raw: dict[str, Any]) -> Deployment:
    return deploy(validate_config(minimal_raw))


# --- ZfsStorage -----------------------------------------------------------------------------


def test_one_storage_class_per_cache_node(minimal: Deployment) -> None:
    (sc,) = [r.inputs for r in minimal.of_type("kubernetes:storage.k8s.io/v1:StorageClass")]
    assert sc["metadata"]["name"] == "arc-zfs-node-a"
    assert sc["provisioner"] == c.OPENEBS_ZFS_CSI_DRIVER
    assert sc["parameters"] == {
        "poolname": "zfspv-pool", "fstype": "zfs", "compression": "lz4",
        "recordsize": "128k", "dedup": "off", "shared": "yes",
    }  # fmt: skip
    # hook 0.7 sets spec.nodeName: a WaitForFirstConsumer clone would stay Pending.
    assert sc["volumeBindingMode"] == "Immediate"
    assert sc["allowedTopologies"] == [
        {"matchLabelExpressions": [{"key": c.OPENEBS_NODE_TOPOLOGY_KEY, "values": ["node-a"]}]}
    ]
    assert_valid({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", **sc})
    snap = minimal.object(
        "kubernetes:snapshot.storage.k8s.io/v1:VolumeSnapshotClass", "arc-zfs-snapshots"
    )
    assert snap["driver"] == c.OPENEBS_ZFS_CSI_DRIVER and snap["deletionPolicy"] == "Delete"


def test_openebs_chart_pinned_and_values(minimal: Deployment) -> None:
    chart = minimal.chart("zfs-localpv")
    assert chart["chart"] == "zfs-localpv"
    assert chart["version"] == c.OPENEBS_ZFS_CHART_VERSION
    assert chart["repositoryOpts"]["repo"] == c.OPENEBS_ZFS_CHART
    assert chart["namespace"] == c.OPENEBS_NAMESPACE
    assert chart["values"]["crds"]["csi"]["volumeSnapshots"]["enabled"] is True


def test_storage_install_false_uses_existing(minimal_raw: dict[str, Any]) -> None:
    minimal_raw["storage"] = {"install": False}
    deployment = deploy(validate_config(minimal_raw))
    assert [r.inputs["name"] for r in deployment.of_type("kubernetes:helm.sh/v4:Chart")] != []
    assert all(
        r.inputs["name"] != "zfs-localpv" for r in deployment.of_type("kubernetes:helm.sh/v4:Chart")
    )
    assert deployment.object("kubernetes:storage.k8s.io/v1:StorageClass", "arc-zfs-node-a")


def test_image_mirror_and_pull_secrets(minimal_raw: dict[str, Any]) -> None:
    minimal_raw["images"] = {
        "registry": "registry.acme.internal/mirror",
        "pullSecrets": ["mirror-pull"],
    }
    deployment = deploy(validate_config(minimal_raw))
    zfs = deployment.chart("zfs-localpv")["values"]
    # The chart has no global registry value: each image has its own.
    assert "imageRegistry" not in zfs
    mirror = {"registry": "registry.acme.internal/mirror/"}
    assert zfs["zfsPlugin"]["image"] == mirror
    assert zfs["zfsNode"]["driverRegistrar"]["image"] == mirror
    for sidecar in ("resizer", "snapshotter", "snapshotController", "provisioner"):
        assert zfs["zfsController"][sidecar]["image"] == mirror, sidecar
    controller = deployment.chart("arc")["values"]
    assert (
        controller["image"]["repository"]
        == "registry.acme.internal/mirror/actions/gha-runner-scale-set-controller"
    )
    assert controller["imagePullSecrets"] == [{"name": "mirror-pull"}]
    runner = deployment.chart("linux")["values"]["template"]["spec"]
    assert (
        runner["containers"][0]["image"]
        == f"registry.acme.internal/mirror/actions/actions-runner:{c.RUNNER_VERSION}"
    )
    assert runner["imagePullSecrets"] == [{"name": "mirror-pull"}]


@pytest.mark.parametrize(
    ("image", "registry", "expected"),
    [
        ("ghcr.io/actions/actions-runner:2.324.0", None, "ghcr.io/actions/actions-runner:2.324.0"),
        (
            "ghcr.io/actions/actions-runner:2.324.0",
            "mirror.io/x/",
            "mirror.io/x/actions/actions-runner:2.324.0",
        ),
        ("busybox:1.36", "mirror.io", "mirror.io/busybox:1.36"),
        ("localhost:5000/a/b:1", "m.io", "m.io/a/b:1"),
    ],
)
def test_mirror_image(image: str, registry: str | None, expected: str) -> None:
    assert mirror_image(image, registry) == expected


def test_node_preparation_is_idempotent_and_secret(minimal_raw: dict[str, Any]) -> None:
    minimal_raw["storage"] = {
        "nodePreparation": {
            "hosts": {"node-a": {"host": "10.0.0.11", "devices": ["/dev/nvme1n1"]}},
            "privateKey": SecretValue("-----BEGIN OPENSSH PRIVATE KEY-----"),
        }
    }
    deployment = deploy(validate_config(minimal_raw))
    (cmd,) = deployment.of_type("command:remote:Command")
    script = cmd.inputs["create"]
    assert "if ! zpool list -H -o name zfspv-pool" in script
    assert "zpool create -o ashift=12 zfspv-pool /dev/nvme1n1" in script
    assert "delete" not in cmd.inputs
    assert cmd.inputs["connection"]["host"] == "10.0.0.11"
    assert "connection.privateKey" in cmd.secret_paths or "connection" in cmd.secret_paths
    assert zpool_script("p", ["/dev/a b"], "lz4", "128k").count("'/dev/a b'") == 1
    nested = zpool_script("p/ci", ["/dev/sdb"], "zstd", "1M")
    assert "if ! zfs list -H -o name p/ci" in nested and "zfs create -p p/ci" in nested
    assert "zfs set compression=zstd p/ci" in nested
    assert "zfs create" not in script  # a bare pool needs no parent dataset


# --- ArcController --------------------------------------------------------------------------


def test_controller_chart(minimal: Deployment) -> None:
    chart = minimal.chart("arc")
    assert chart["chart"] == c.ARC_CONTROLLER_CHART
    assert chart["version"] == c.ARC_CONTROLLER_CHART_VERSION
    assert chart["namespace"] == "arc-systems"
    ns = minimal.object("kubernetes:core/v1:Namespace", "arc-systems")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# --- BuildCache -----------------------------------------------------------------------------


def test_fresh_cache_root_generation_and_builder_volume(minimal: Deployment) -> None:
    root = minimal.object(PVC, "gcc12-gen-1")
    assert root["metadata"]["namespace"] == "arc-runners"
    assert root["metadata"]["labels"][c.LABEL_ROLE] == c.ROLE_PARENT
    assert root["metadata"]["labels"][c.LABEL_GENERATION] == "1"
    # One class for parent, builder volume and clones: the provisioner refuses any other.
    assert root["spec"]["storageClassName"] == "arc-zfs-node-a"
    assert root["spec"]["resources"]["requests"]["storage"] == "200Gi"
    work = minimal.object(PVC, "gcc12-work-1")
    assert work["spec"]["dataSource"] == {
        "apiGroup": "",
        "kind": "PersistentVolumeClaim",
        "name": "gcc12-gen-1",
    }
    assert work["spec"]["resources"]["requests"]["storage"] == "200Gi"
    assert work["spec"]["storageClassName"] == "arc-zfs-node-a"
    for pvc in (root, work):
        assert_valid({"apiVersion": "v1", "kind": "PersistentVolumeClaim", **pvc})


def test_imported_dataset(minimal_raw: dict[str, Any]) -> None:
    minimal_raw["caches"]["gcc12"]["import"] = {"dataset": "zfspv-pool/ci/gcc12-main"}
    deployment = deploy(validate_config(minimal_raw))
    zv = deployment.object("kubernetes:zfs.openebs.io/v1:ZFSVolume", "gcc12-main")
    assert zv["metadata"]["namespace"] == c.OPENEBS_NAMESPACE
    assert zv["spec"] == {
        "capacity": str(200 * 2**30), "ownerNodeID": "node-a", "poolName": "zfspv-pool/ci",
        "volumeType": "DATASET", "fsType": "zfs",
    }  # fmt: skip
    assert zv["status"] == {"state": "Ready"}
    pv = deployment.object("kubernetes:core/v1:PersistentVolume", "gcc12-main")
    assert pv["spec"]["csi"] == {
        "driver": c.OPENEBS_ZFS_CSI_DRIVER,
        "fsType": "zfs",
        "volumeHandle": "gcc12-main",
    }
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pv["spec"]["claimRef"] == {"namespace": "arc-runners", "name": "gcc12-gen-1"}
    term = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert term == {"key": "openebs.io/nodeid", "operator": "In", "values": ["node-a"]}
    assert_valid({"apiVersion": "v1", "kind": "PersistentVolume", **pv})
    root = deployment.object(PVC, "gcc12-gen-1")
    assert root["spec"]["volumeName"] == "gcc12-main"
    assert "annotations" not in root["metadata"] or not root["metadata"].get("annotations")


def test_storage_namespace_reaches_the_imported_volume_and_promotion(
    minimal_raw: dict[str, Any],
) -> None:
    # OpenEBS installed elsewhere: the imported ZFSVolume and the ZFS inventory that garbage
    # collection's dependency check reads must both look there, not in "openebs".
    minimal_raw["storage"] = {"namespace": "zfs-system"}
    minimal_raw["caches"]["gcc12"]["import"] = {"dataset": "zfspv-pool/ci/gcc12-main"}
    deployment = deploy(validate_config(minimal_raw))
    zv = deployment.object("kubernetes:zfs.openebs.io/v1:ZFSVolume", "gcc12-main")
    assert zv["metadata"]["namespace"] == "zfs-system"
    (promotion,) = deployment.of_type(PROMOTION_TYPE)
    assert promotion.inputs["zfs_namespace"] == "zfs-system"


def test_promotion_resource_inputs(minimal: Deployment) -> None:
    (promotion,) = minimal.of_type(PROMOTION_TYPE)
    props = promotion.inputs
    assert props["cache"] == "gcc12" and props["namespace"] == "arc-runners"
    assert props["root_claim"] == "gcc12-gen-1" and props["builder_volume"] == "gcc12-work-1"
    assert props["grace_seconds"] == 900 and props["lease_seconds"] == 300
    assert props["snapshot_class"] == "arc-zfs-snapshots"


# --- HookExtension --------------------------------------------------------------------------


def hook_content(deployment: Deployment, scale_set: str) -> dict[str, Any]:
    cm = deployment.object(CONFIG_MAP, c.hook_template_name(scale_set))
    assert cm["metadata"]["labels"][c.LABEL_HOOK_TEMPLATE] == "true"
    assert set(cm["data"]) == {c.HOOK_TEMPLATE_KEY}
    parsed: dict[str, Any] = yaml.safe_load(cm["data"][c.HOOK_TEMPLATE_KEY])
    return parsed


def test_hook_template_clones_current_parent(minimal: Deployment) -> None:
    template = hook_content(minimal, "linux")
    spec = template["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": 1001, "runAsGroup": 123, "fsGroup": 123,
        "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"},
    }  # fmt: skip
    (volume,) = spec["volumes"]
    claim = volume["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert claim["dataSource"] == {
        "apiGroup": "",
        "kind": "PersistentVolumeClaim",
        "name": "gcc12-gen-1",
    }
    assert claim["resources"]["requests"]["storage"] == "200Gi"  # exactly the parent's size
    assert claim["storageClassName"] == "arc-zfs-node-a"
    (job,) = spec["containers"]
    assert job["name"] == c.JOB_CONTAINER_NAME
    assert job["volumeMounts"] == [{"name": volume["name"], "mountPath": "/CONAN_HOME"}]
    assert job["env"] == [{"name": "CONAN_HOME", "value": "/CONAN_HOME"}]
    assert job["securityContext"]["allowPrivilegeEscalation"] is False
    assert job["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_hook_template_several_caches_and_resources(minimal_raw: dict[str, Any]) -> None:
    minimal_raw["caches"]["clang17"] = {
        "node": "node-a", "size": "50Gi", "mountPath": "/CLANG_HOME", "env": {"CLANG_HOME": "/CLANG_HOME"},
    }  # fmt: skip
    minimal_raw["scaleSets"]["linux"]["caches"] = [
        "gcc12",
        {"cache": "clang17", "mountPath": "/opt/clang"},
    ]
    minimal_raw["scaleSets"]["linux"]["jobResources"] = {
        "requests": {"cpu": "2"},
        "limits": {"memory": "8Gi"},
    }
    template = hook_content(deploy(validate_config(minimal_raw)), "linux")
    sizes = {
        v["name"]: v["ephemeral"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"]
        for v in template["spec"]["volumes"]
    }
    assert sizes == {"cache-gcc12": "200Gi", "cache-clang17": "50Gi"}
    (job,) = template["spec"]["containers"]
    assert {m["mountPath"] for m in job["volumeMounts"]} == {"/CONAN_HOME", "/opt/clang"}
    assert job["resources"] == {"requests": {"cpu": "2"}, "limits": {"memory": "8Gi"}}


def test_builder_hook_template_mounts_builder_volume(minimal: Deployment) -> None:
    template = hook_content(minimal, "gcc12-builder")
    (volume,) = template["spec"]["volumes"]
    assert volume == {"name": "cache-gcc12", "persistentVolumeClaim": {"claimName": "gcc12-work-1"}}


# --- RunnerNamespace and RunnerScaleSet ------------------------------------------------------


def test_runner_namespace_pod_security_and_credentials(minimal: Deployment) -> None:
    ns = minimal.object("kubernetes:core/v1:Namespace", "arc-runners")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    secret = minimal.object("kubernetes:core/v1:Secret", c.GITHUB_SECRET_NAME)
    assert secret["metadata"]["namespace"] == "arc-runners"
    assert secret["stringData"] == {"github_token": "ghp_unit_test_token_value"}
    assert "stringData" in minimal.of_type("kubernetes:core/v1:Secret")[0].secret_paths


def test_github_app_credentials_secret(minimal_raw: dict[str, Any]) -> None:
    minimal_raw["github"]["credentials"] = {
        "app": {"appId": 12, "installationId": 34, "privateKey": SecretValue("PEM")}
    }
    secret = deploy(validate_config(minimal_raw)).object(
        "kubernetes:core/v1:Secret", c.GITHUB_SECRET_NAME
    )
    assert secret["stringData"] == {
        "github_app_id": "12", "github_app_installation_id": "34", "github_app_private_key": "PEM",
    }  # fmt: skip


def test_scale_set_chart_values(minimal: Deployment) -> None:
    chart = minimal.chart("linux")
    assert (
        chart["chart"] == c.ARC_SCALE_SET_CHART
        and chart["version"] == c.ARC_SCALE_SET_CHART_VERSION
    )
    values = chart["values"]
    assert values["githubConfigUrl"] == "https://github.com/acme"
    assert values["githubConfigSecret"] == c.GITHUB_SECRET_NAME
    assert values["containerMode"]["type"] == "kubernetes"
    assert values["controllerServiceAccount"] == {
        "namespace": "arc-systems",
        "name": "arc-gha-rs-controller",
    }
    assert (values["minRunners"], values["maxRunners"]) == (0, 4)
    spec = values["template"]["spec"]
    assert spec["nodeSelector"] == {"kubernetes.io/hostname": "node-a"}
    (runner,) = spec["containers"]
    env = {e["name"]: e["value"] for e in runner["env"]}
    assert env == {
        "ACTIONS_RUNNER_CONTAINER_HOOKS": c.HOOK_ENTRYPOINT,
        "ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE": c.HOOK_TEMPLATE_FILE,
        "ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER": "true",
    }
    # Mounted as a directory (no subPath) so a promotion reaches running runners.
    assert runner["volumeMounts"] == [
        {"name": c.HOOK_TEMPLATE_VOLUME, "mountPath": c.HOOK_TEMPLATE_DIR, "readOnly": True}
    ]
    assert c.HOOK_TEMPLATE_FILE.startswith(c.HOOK_TEMPLATE_DIR + "/")
    assert spec["volumes"] == [
        {"name": c.HOOK_TEMPLATE_VOLUME, "configMap": {"name": c.hook_template_name("linux")}}
    ]
    assert runner["image"] == c.RUNNER_IMAGE
    assert spec["securityContext"]["runAsNonRoot"] is True
    pod_template = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "linux"},
                    "template": values["template"]}  # fmt: skip
    assert_valid(pod_template)


def test_credentials_never_in_chart_values(minimal: Deployment) -> None:
    for chart in minimal.of_type("kubernetes:helm.sh/v4:Chart"):
        assert "ghp_unit_test_token_value" not in json.dumps(chart.inputs)


def test_ghes_ca_bundle(minimal_raw: dict[str, Any]) -> None:
    minimal_raw["github"]["caBundle"] = (
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    )
    deployment = deploy(validate_config(minimal_raw))
    ca = deployment.object(CONFIG_MAP, c.GITHUB_CA_CONFIG_MAP)
    assert ca["data"][c.GITHUB_CA_KEY].startswith("-----BEGIN CERTIFICATE-----")
    tls = deployment.chart("linux")["values"]["githubServerTLS"]
    assert tls["certificateFrom"]["configMapKeyRef"] == {
        "name": c.GITHUB_CA_CONFIG_MAP,
        "key": c.GITHUB_CA_KEY,
    }


def test_chart_references_are_overridable(minimal_raw: dict[str, Any]) -> None:
    minimal_raw["controller"] = {
        "chart": {"chart": "./charts/controller"},
        "scaleSetChart": {"chart": "gha-runner-scale-set", "repo": "https://charts.acme.internal", "version": "0.14.2"},
    }  # fmt: skip
    deployment = deploy(validate_config(minimal_raw))
    assert deployment.chart("arc")["chart"] == "./charts/controller"
    assert deployment.chart("linux")["repositoryOpts"] == {"repo": "https://charts.acme.internal"}


def test_prod_stack_resources() -> None:
    raw = load_stack_file(ROOT / "Pulumi.prod.yaml")
    raw["github"]["credentials"]["app"]["privateKey"] = SecretValue("PEM")
    deployment = deploy(validate_config(raw))
    assert {r.k8s_name for r in deployment.of_type("kubernetes:core/v1:Namespace")} >= {
        "ci-gcc",
        "ci-cross",
    }
    assert deployment.chart("prod-cross")["values"]["template"]["spec"]["nodeSelector"] == {
        "kubernetes.io/hostname": "ci-prod-zfs-2"
    }
    assert deployment.object("kubernetes:zfs.openebs.io/v1:ZFSVolume", "gcc12-toolchain-main")


@pytest.mark.parametrize("scale_set", ["linux", "gcc12-builder"])
def test_merged_job_pod_is_a_valid_restricted_pod(minimal: Deployment, scale_set: str) -> None:
    """The hook's job pod with our template merged in, as hook 0.7 merges, is a valid Pod."""
    template = hook_content(minimal, scale_set)
    pod = merge_job_pod(base_job_pod("linux-abcde-runner-x7k2p", services=["redis:7"]), template)
    assert_valid(pod)
    spec = pod["spec"]
    # The template's securityContext replaces the hook's; the token is not mounted.
    assert spec["securityContext"]["runAsUser"] == c.JOB_UID
    assert spec["securityContext"]["fsGroup"] == c.JOB_GID
    assert spec["automountServiceAccountToken"] is False
    job = next(ctr for ctr in spec["containers"] if ctr["name"] == "job")
    assert job["image"] == "ubuntu:24.04"  # the workflow's image, not the template's
    assert any(m["mountPath"] == "/CONAN_HOME" for m in job["volumeMounts"])
    # The hook's own mounts (the work volume at /__w) survive: mounts are appended.
    assert {"name": "work", "mountPath": "/__w"} in job["volumeMounts"]
    volumes = {v["name"] for v in spec["volumes"]}
    assert "cache-gcc12" in volumes and len(volumes) == len(spec["volumes"])


def test_provider_updates_hook_config_maps_in_place(minimal: Deployment) -> None:
    (provider,) = minimal.of_type("pulumi:providers:kubernetes")
    # Provider inputs travel as strings.
    assert provider.inputs["enableConfigMapMutable"] == "true"
    assert provider.inputs["enableServerSideApply"] == "true"
