"""The pods hooks 0.7 and 0.8 create and their merge rules (policy/arc_policy/hook_merge.py)."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest

from policy.arc_policy.hook_merge import (
    HOOK_0_7,
    HOOK_0_8,
    RunnerContext,
    WorkflowContainer,
    base_job_pod,
    container_ports,
    effective_job_pod,
    hook_version,
    job_pod_name,
    merge_container,
    merge_job_pod,
    novolume_job_pod,
    novolume_step_pod,
    service_container_name,
    step_job,
    step_pod,
    template_service_names,
)

K8S_VERSION = "1.34.0"


def test_base_pod_is_what_prepare_job_creates() -> None:
    pod = base_job_pod("linux-abcde-runner-x7k2p", node_name="zfs-1", job_image="node:22")
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    assert pod["metadata"] == {
        "name": "linux-abcde-runner-x7k2p-workflow",
        "labels": {"runner-pod": "linux-abcde-runner-x7k2p"},
        "annotations": {},
    }
    spec = pod["spec"]
    assert spec["nodeName"] == "zfs-1"  # pinned: a WaitForFirstConsumer clone stays Pending
    assert spec["restartPolicy"] == "Never"
    assert spec["volumes"] == [
        {"name": "work", "persistentVolumeClaim": {"claimName": "linux-abcde-runner-x7k2p-work"}}
    ]
    (job,) = spec["containers"]
    assert job["name"] == "job" and job["image"] == "node:22"
    assert job["command"] == ["tail"] and job["args"] == ["-f", "/dev/null"]
    assert {"name": "GITHUB_ACTIONS", "value": "true"} in job["env"]
    assert [m["mountPath"] for m in job["volumeMounts"]] == [
        "/__w",
        "/__e",
        "/github/home",
        "/github/workflow",
    ]
    # The hook sets no security settings at all: everything comes from the template.
    assert "securityContext" not in spec and "securityContext" not in job
    assert "automountServiceAccountToken" not in spec and "serviceAccountName" not in spec


def test_base_pod_options() -> None:
    pod = base_job_pod(
        "r" * 70,
        use_kube_scheduler=True,
        claim_name="shared-work",
        registry_secret="pull-1",
        services=["ghcr.io/acme/redis:7", {"image": "postgres:16", "portMappings": ["5432"]}],
        job_env={"FOO": "1", "HOME": "/root", "EMPTY": ""},
        port_mappings=["8080:80/udp"],
    )
    spec = pod["spec"]
    assert len(pod["metadata"]["name"]) == 63 and pod["metadata"]["name"].endswith("-workflow")
    assert "nodeName" not in spec and "nodeAffinity" in spec["affinity"]
    assert spec["volumes"][0]["persistentVolumeClaim"]["claimName"] == "shared-work"
    assert spec["imagePullSecrets"] == [{"name": "pull-1"}]
    job, redis, postgres = spec["containers"]
    assert (redis["name"], postgres["name"]) == ("redis", "postgres")
    assert "command" not in redis  # only the job container gets the default entry point
    assert redis["volumeMounts"] == [{"name": "work", "mountPath": "/__w"}]
    assert postgres["ports"] == [{"protocol": "TCP", "containerPort": 5432}]
    assert job["ports"] == [{"protocol": "UDP", "hostPort": 8080, "containerPort": 80}]
    names = [e["name"] for e in job["env"]]
    assert names == ["FOO", "GITHUB_ACTIONS", "CI"]  # HOME and empty values are skipped
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


@pytest.mark.parametrize(
    ("mapping", "error"),
    [("1:2:3", "at most one"), ("80/tcp/x", "format"), ("0", "range"), ("70000", "range")],
)
def test_container_ports_rejects_what_the_hook_rejects(mapping: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        container_ports([mapping])


def test_names() -> None:
    assert job_pod_name("runner-1") == "runner-1-workflow"
    assert service_container_name("registry.example.com:5000/acme/redis:7") == "redis"
    with pytest.raises(ValueError):
        service_container_name("acme/")


def test_container_merge_appends_lists_and_overrides_the_rest() -> None:
    base = base_job_pod()["spec"]["containers"][0]
    extension = {
        "name": "$job",
        "image": "evil:latest",
        "env": [{"name": "CONAN_HOME", "value": "/CONAN_HOME"}],
        "volumeMounts": [{"name": "cache", "mountPath": "/CONAN_HOME"}],
        "ports": [{"containerPort": 9000}],
        "securityContext": {"allowPrivilegeEscalation": False},
        "command": ["/bin/sh"],
    }
    merged = merge_container(base, extension)
    assert merged["name"] == "job" and merged["image"] == base["image"]  # never overridden
    assert merged["env"][: len(base["env"])] == base["env"]
    assert merged["env"][-1] == {"name": "CONAN_HOME", "value": "/CONAN_HOME"}
    assert merged["volumeMounts"][0] == {"name": "work", "mountPath": "/__w"}
    assert merged["volumeMounts"][-1]["mountPath"] == "/CONAN_HOME"
    assert merged["ports"] == [{"containerPort": 9000}]
    assert merged["securityContext"] == {"allowPrivilegeEscalation": False}
    assert merged["command"] == ["/bin/sh"]  # other fields override
    # Explicit nulls: env keeps the hook's (mergeLists), volumeMounts are cleared (as in JS).
    nulls = merge_container(base, {"env": None, "volumeMounts": None, "args": None})
    assert nulls["env"] == base["env"]
    assert "volumeMounts" not in nulls and "args" not in nulls


TEMPLATE = {
    "metadata": {
        "name": "ignored",
        "labels": {"runner-pod": "overridden", "team": "build"},
        "annotations": {"a": "1"},
    },
    "spec": {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1001},
        "automountServiceAccountToken": False,
        "nodeName": "elsewhere",
        "initContainers": [{"name": "init", "image": "busybox:1.37"}],
        "containers": [
            {"name": "$job", "securityContext": {"allowPrivilegeEscalation": False}},
            {"name": "$redis", "securityContext": {"runAsUser": 999}},
            {"name": "$unmatched", "image": "x:1"},
            {"name": "sidecar", "image": "envoy:1.33"},
        ],
        "volumes": [{"name": "cache", "emptyDir": {}}],
    },
}


def test_pod_merge_rules() -> None:
    base = base_job_pod("runner-1", services=["redis:7"])
    before = copy.deepcopy(base)
    pod = merge_job_pod(base, TEMPLATE)
    assert base == before  # pure: nothing modified in place
    meta = pod["metadata"]
    assert meta["name"] == "runner-1-workflow"  # only labels and annotations are taken
    assert meta["labels"] == {"runner-pod": "overridden", "team": "build"}
    assert meta["annotations"] == {"a": "1"}
    spec = pod["spec"]
    # Every other spec field replaces the hook's, nodeName included.
    assert spec["securityContext"] == {"runAsNonRoot": True, "runAsUser": 1001}
    assert spec["automountServiceAccountToken"] is False
    assert spec["nodeName"] == "elsewhere"
    assert spec["initContainers"] == [{"name": "init", "image": "busybox:1.37"}]
    # Volumes are appended after the hook's work volume.
    assert [v["name"] for v in spec["volumes"]] == ["work", "cache"]
    # `$` entries merge into their container (or vanish); others are appended as sidecars.
    assert [c["name"] for c in spec["containers"]] == ["job", "redis", "sidecar"]
    job, redis, _ = spec["containers"]
    assert job["securityContext"] == {"allowPrivilegeEscalation": False}
    assert redis["securityContext"] == {"runAsUser": 999}
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


def test_template_security_context_replaces_the_hooks() -> None:
    base = merge_job_pod(base_job_pod(), {"spec": {"securityContext": {"runAsUser": 5}}})
    pod = merge_job_pod(base, {"spec": {"securityContext": {"runAsNonRoot": True}}})
    assert pod["spec"]["securityContext"] == {"runAsNonRoot": True}  # replaced, not merged


def test_null_fields_and_missing_template() -> None:
    base = base_job_pod()
    assert merge_job_pod(base, None) == base
    assert merge_job_pod(base, {"spec": "not a mapping"}) == base
    pod = merge_job_pod(base, {"spec": {"volumes": None, "nodeName": None}})
    assert "volumes" not in pod["spec"] and "nodeName" not in pod["spec"]


def test_effective_job_pod_models_template_services() -> None:
    assert template_service_names(TEMPLATE) == ["redis", "unmatched"]
    pod = effective_job_pod(TEMPLATE)
    names = [c["name"] for c in pod["spec"]["containers"]]
    assert names == ["job", "redis", "unmatched", "sidecar"]
    assert pod["spec"]["containers"][2]["image"] == "unmatched"  # the template's image is ignored


# --- hook 0.7 container steps ---------------------------------------------------------------


def test_0_7_step_job_is_what_create_job_creates() -> None:
    runner = RunnerContext("linux-abcde-runner-x7k2p", node_name="zfs-1")
    step = WorkflowContainer("alpine:3.20", working_dir="/github/workspace", entry_point="sh")
    job = step_job(TEMPLATE, step, runner, suffix="0123456789", secret="s-1")
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    assert job["metadata"]["name"] == "linux-abcde-runner-x7k2p-step-01234567"
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["ttlSecondsAfterFinished"] == 300
    # The template's metadata goes on both the Job and its pod; only the Job has runner-pod.
    assert job["metadata"]["labels"] == {"runner-pod": "overridden", "team": "build"}
    pod = job["spec"]["template"]
    assert pod["metadata"]["labels"] == {"runner-pod": "overridden", "team": "build"}
    assert step_job(None, step, runner)["spec"]["template"]["metadata"]["labels"] == {}
    spec = pod["spec"]
    # The step pod takes the template like the job pod: $job merged, sidecars, spec replaced.
    assert [c["name"] for c in spec["containers"]] == ["job", "sidecar"]
    container = spec["containers"][0]
    assert container["securityContext"] == {"allowPrivilegeEscalation": False}
    assert container["envFrom"] == [{"secretRef": {"name": "s-1", "optional": False}}]
    assert container["command"] == ["sh"] and container["workingDir"] == "/github/workspace"
    assert {"name": "work", "mountPath": "/github/workspace", "subPath": "repo/repo"} in (
        container["volumeMounts"]
    )
    assert spec["securityContext"] == TEMPLATE["spec"]["securityContext"]
    assert spec["nodeName"] == "elsewhere"
    assert [v["name"] for v in spec["volumes"]] == ["work", "cache"]
    assert spec["volumes"][0]["persistentVolumeClaim"]["claimName"] == (
        "linux-abcde-runner-x7k2p-work"
    )
    unsecret = step_job(TEMPLATE, step, runner)["spec"]["template"]
    assert step_pod(TEMPLATE, step, runner) == {"apiVersion": "v1", "kind": "Pod", **unsecret}
    pinned = step_job(None, step, RunnerContext(node_name="n", use_kube_scheduler=True))
    assert "nodeName" not in pinned["spec"]["template"]["spec"]
    assert pinned["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]


# --- hook 0.8 (kubernetes-novolume) ---------------------------------------------------------


def test_0_8_job_pod_is_what_create_job_pod_creates() -> None:
    runner = RunnerContext("r-1", runner_image="ghcr.io/actions/actions-runner:2.336.0")
    job = WorkflowContainer("node:22")
    pod = novolume_job_pod(None, job, [WorkflowContainer.of("redis:7")], runner)
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    assert pod["metadata"] == {
        "name": "r-1-workflow",
        "labels": {"runner-pod": "r-1"},
        "annotations": {},
    }
    spec = pod["spec"]
    assert spec["securityContext"] == {"fsGroup": 1001}
    assert spec["restartPolicy"] == "Never"
    assert "nodeName" not in spec and "affinity" not in spec  # placed by the scheduler
    assert spec["volumes"] == [
        {"name": "externals", "emptyDir": {}},
        {"name": "github", "emptyDir": {}},
        {"name": "work", "emptyDir": {}},
    ]
    (fs_init,) = spec["initContainers"]
    assert fs_init["name"] == "fs-init"
    assert fs_init["image"] == "ghcr.io/actions/actions-runner:2.336.0"  # ACTIONS_RUNNER_IMAGE
    assert fs_init["securityContext"] == {"runAsGroup": 1001, "runAsUser": 1001}
    assert fs_init["command"][:2] == ["sh", "-c"]
    assert fs_init["command"][2].endswith("mkdir -p /mnt/work/repo/repo")
    assert novolume_job_pod(None)["spec"]["initContainers"][0]["image"] == (
        "ghcr.io/actions/actions-runner:latest"
    )
    job_c, redis = spec["containers"]
    assert job_c["command"] == ["tail"] and redis["name"] == "redis"
    # Job and service containers alike mount the three emptyDir volumes.
    mounts = [{"name": "externals", "mountPath": "/__e"}, {"name": "work", "mountPath": "/__w"}]
    mounts.append({"name": "github", "mountPath": "/github"})
    assert job_c["volumeMounts"] == mounts and redis["volumeMounts"] == mounts


def test_0_8_template_replaces_fs_group_and_fs_init() -> None:
    hardened = {"name": "fs-init", "image": "runner:1", "securityContext": {"runAsNonRoot": True}}
    template = {
        "spec": {
            "securityContext": {"runAsNonRoot": True},
            "initContainers": [hardened],
            "volumes": [{"name": "cache", "emptyDir": {}}],
            "containers": [{"name": "$job", "securityContext": {"runAsUser": 1001}}],
        }
    }
    spec = novolume_job_pod(template)["spec"]
    assert spec["securityContext"] == {"runAsNonRoot": True}  # fsGroup gone
    assert spec["initContainers"] == [hardened]  # fs-init replaced
    assert [v["name"] for v in spec["volumes"]] == ["externals", "github", "work", "cache"]
    # Appended, not merged by name (mergeLists): a same-named volume is a duplicate.
    clash = novolume_job_pod({"spec": {"volumes": [{"name": "work", "emptyDir": {}}]}})
    assert [v["name"] for v in clash["spec"]["volumes"]].count("work") == 2
    assert spec["containers"][0]["securityContext"] == {"runAsUser": 1001}


def test_0_8_containers_share_one_mount_list() -> None:
    cache = {"name": "cache", "mountPath": "/cache"}
    template = {
        "spec": {
            "containers": [
                {"name": "$job", "volumeMounts": [cache]},
                {"name": "$redis", "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                {"name": "$postgres", "volumeMounts": None},
            ]
        }
    }
    services = [WorkflowContainer.of("redis:7"), WorkflowContainer.of("postgres:16")]
    job, redis, postgres = novolume_job_pod(template, services=services)["spec"]["containers"]
    # CONTAINER_VOLUMES is one array: every merge appends to it, every container sees it all.
    paths = ["/__e", "/__w", "/github", "/cache", "/data"]
    assert [m["mountPath"] for m in job["volumeMounts"]] == paths
    assert redis["volumeMounts"] == job["volumeMounts"]
    assert "volumeMounts" not in postgres  # an explicit null replaces the shared list
    # Hook 0.7 builds a fresh list per container.
    pod_0_7 = effective_job_pod(template, services=["redis:7", "postgres:16"])
    assert "/data" not in [m["mountPath"] for m in pod_0_7["spec"]["containers"][0]["volumeMounts"]]


def test_0_8_step_pod_is_what_create_container_step_pod_creates() -> None:
    runner = RunnerContext("r-1")
    pod = novolume_step_pod(TEMPLATE, WorkflowContainer("alpine:3.20"), runner, suffix="abcdef12")
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    assert pod["metadata"]["name"] == "r-1-step-abcdef12"
    assert pod["metadata"]["labels"] == {"runner-pod": "overridden", "team": "build"}
    spec = pod["spec"]
    container = spec["containers"][0]
    assert container["command"] == ["tail"] and container["workingDir"] == "/__w"
    assert container["securityContext"] == {"allowPrivilegeEscalation": False}
    assert [c["name"] for c in spec["containers"]] == ["job", "sidecar"]
    # Without a template: no init container and no securityContext (unlike the job pod).
    bare = novolume_step_pod(None)["spec"]
    assert "initContainers" not in bare and "securityContext" not in bare
    assert [v["name"] for v in bare["volumes"]] == ["externals", "github", "work"]


def test_hook_versions_by_entry_point() -> None:
    assert hook_version("/home/runner/k8s/index.js") is HOOK_0_7
    assert hook_version("/home/runner/k8s-novolume/index.js") is HOOK_0_8
    assert hook_version("/opt/other/index.js") is None and hook_version(None) is None
    assert str(HOOK_0_8) == "runner-container-hooks 0.8.1"
    assert HOOK_0_7.job_pod(TEMPLATE, WorkflowContainer(), None, RunnerContext()) == (
        effective_job_pod(TEMPLATE)
    )
    assert HOOK_0_8.job_pod(None, WorkflowContainer(), None, RunnerContext()) == (
        novolume_job_pod(None)
    )
    assert HOOK_0_8.step_pod(None, WorkflowContainer(), RunnerContext()) == novolume_step_pod(None)
