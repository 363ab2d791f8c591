"""The hook 0.7 job pod and its merge rules (policy/arc_policy/hook_merge.py)."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest

from policy.arc_policy.hook_merge import (
    base_job_pod,
    container_ports,
    effective_job_pod,
    job_pod_name,
    merge_container,
    merge_job_pod,
    service_container_name,
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
