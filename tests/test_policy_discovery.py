"""Discovery: hook templates, runner pods and workloads, however they are declared."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from policy.arc_policy.discovery import (
    Resource,
    hook_template_mount,
    hook_templates,
    is_scale_set_values,
    pod_targets,
    runner_pods,
)
from policy.arc_policy.model import PodKind
from policy.arc_policy.scale_set_chart import render_scale_set_values
from policy.arc_policy.testing import UNKNOWN_STRING, declared, resource_args, stack_args
from policy.arc_policy.values import UNKNOWN, to_plain

CM = "kubernetes:core/v1:ConfigMap"
TEMPLATE = {"spec": {"containers": [{"name": "$job", "env": [{"name": "A", "value": "1"}]}]}}


def resource(type_: str, props: dict[str, Any], **kwargs: Any) -> Resource:
    """A :class:`Resource` as a resource policy sees it."""
    return Resource.of(resource_args(declared(type_, "r", props, **kwargs)))


def config_map(
    data: Any, labels: dict[str, str] | None = None, namespace: str | None = "ci"
) -> Resource:
    meta: dict[str, Any] = {"name": "t", "labels": labels or {}}
    if namespace:
        meta["namespace"] = namespace
    return resource(CM, {"metadata": meta, "data": data})


def test_template_by_label() -> None:
    found = hook_templates(
        config_map(
            {"content": yaml.safe_dump({"spec": {}}), "other": "- a list"},
            {"arc-zfs-cache.io/hook-template": "true"},
        )
    )
    assert [(f.key, f.found_by) for f in found] == [("content", "label"), ("other", "label")]
    assert found[0].template == {"spec": {}}
    assert (
        found[1].template is None
    )  # labelled but not a mapping: reported by mounted-hook-templates


def test_template_by_content() -> None:
    found = hook_templates(config_map({"content": yaml.safe_dump(TEMPLATE), "README": "hello"}))
    assert [(f.key, f.found_by) for f in found] == [("content", "content")]
    no_job = {"spec": {"containers": [{"name": "$redis"}]}}
    assert hook_templates(config_map({"content": yaml.safe_dump(no_job)})) == []
    assert hook_templates(config_map({"content": ": not yaml :"})) == []


def test_template_unknown_in_preview() -> None:
    assert hook_templates(config_map(UNKNOWN_STRING)) == []
    (found,) = hook_templates(
        config_map({"content": UNKNOWN_STRING}, {"arc-zfs-cache.io/hook-template": "true"})
    )
    assert found.template is UNKNOWN
    assert (
        pod_targets(
            config_map({"content": UNKNOWN_STRING}, {"arc-zfs-cache.io/hook-template": "true"})
        )
        == []
    )


def test_job_target_is_the_merged_pod() -> None:
    (target,) = pod_targets(config_map({"content": yaml.safe_dump(TEMPLATE)}))
    assert target.kind is PodKind.JOB
    assert str(target.resource) == "ConfigMap ci/t"
    job = target.spec["containers"][0]
    assert job["name"] == "job" and job["env"][-1] == {"name": "A", "value": "1"}
    assert (
        target.container_path("containers", "job", "image")
        == "data.content: spec.containers[$job].image"
    )


def test_namespaces() -> None:
    assert config_map({}, namespace=None).namespace == "default"
    provider_ns = Resource.of(
        resource_args(
            declared(CM, "r", {"metadata": {"name": "t"}}, provider_namespace="arc-runners")
        )
    )
    assert provider_ns.namespace == "arc-runners"
    chart = resource(
        "kubernetes:helm.sh/v3:Release",
        {"chart": "gha-runner-scale-set", "namespace": "a", "values": {"namespaceOverride": "b"}},
    )
    assert chart.namespace == "b" and chart.kind == "Release"
    ns = resource("kubernetes:core/v1:Namespace", {"metadata": {"name": "arc-runners"}})
    assert ns.ref.key == "Namespace//arc-runners"


RUNNER = {
    "name": "runner",
    "image": "ghcr.io/actions/actions-runner:2.324.0",
    "env": [{"name": "ACTIONS_RUNNER_CONTAINER_HOOKS", "value": "/home/runner/k8s/index.js"}],
}


@pytest.mark.parametrize(
    ("type_", "props", "mode", "prefix"),
    [
        (
            "kubernetes:actions.github.com/v1alpha1:AutoscalingRunnerSet",
            {
                "metadata": {"name": "s", "namespace": "ci"},
                "spec": {"template": {"spec": {"containers": [RUNNER]}}},
            },
            "kubernetes",
            "spec.template.",
        ),
        (
            # pulumi_kubernetes.apiextensions.CustomResource registers the same type token.
            "kubernetes:actions.github.com/v1alpha1:AutoscalingRunnerSet",
            {
                "apiVersion": "actions.github.com/v1alpha1",
                "kind": "AutoscalingRunnerSet",
                "metadata": {"name": "s"},
                "spec": {
                    "template": {"spec": {"containers": [{"name": "runner", "image": "x:1"}]}}
                },
            },
            "",
            "spec.template.",
        ),
        (
            "kubernetes:helm.sh/v3:Release",
            {
                "chart": "oci://ghcr.io/actions/actions-runner-controller-charts/gha-runner-scale-set",
                "values": {"containerMode": {"type": "kubernetes"}},
            },
            "kubernetes",
            "values.template.",
        ),
        (
            "kubernetes:helm.sh/v4:Chart",
            {
                "chart": "./charts/gha-runner-scale-set",
                "values": {
                    "githubConfigUrl": "https://github.com/a",
                    "containerMode": {"type": "dind"},
                },
            },
            "dind",
            "values.template.",
        ),
        (
            "kubernetes:helm.sh/v3:Release",
            {"chart": "gha-runner-scale-set-0.14.2.tgz", "values": {}},
            "",
            "values.template.",
        ),
    ],
)
def test_runner_pods_however_declared(
    type_: str, props: dict[str, Any], mode: str, prefix: str
) -> None:
    (runner,) = runner_pods(resource(type_, props))
    assert runner.mode == mode
    assert runner.target.prefix == prefix
    assert runner.target.spec["containers"][0]["name"] == "runner"


def test_not_a_scale_set() -> None:
    controller = resource(
        "kubernetes:helm.sh/v3:Release",
        {"chart": "gha-runner-scale-set-controller", "values": {"githubConfigUrl": "x"}},
    )
    assert not is_scale_set_values(controller) and runner_pods(controller) == []
    other = resource(
        "kubernetes:helm.sh/v3:Release", {"chart": "ingress-nginx", "values": {"controller": {}}}
    )
    assert runner_pods(other) == []
    assert runner_pods(resource("kubernetes:helm.sh/v4:Chart", {})) == []  # a component in preview


def test_render_kubernetes_mode_values() -> None:
    pod, mode, added = render_scale_set_values(
        {
            "containerMode": {
                "type": "kubernetes",
                "kubernetesModeWorkVolumeClaim": {"storageClassName": "zfs"},
            },
            "template": {
                "spec": {
                    "nodeSelector": {"a": "b"},
                    "containers": [
                        {"name": "runner", "image": "r:1"},
                        {"name": "side", "image": "s:1"},
                    ],
                }
            },
        }
    )
    assert mode == "kubernetes" and added == set()
    spec = pod["spec"]
    assert spec["nodeSelector"] == {"a": "b"} and spec["restartPolicy"] == "Never"
    runner, side = spec["containers"]
    assert [e["name"] for e in runner["env"]] == [
        "ACTIONS_RUNNER_CONTAINER_HOOKS",
        "ACTIONS_RUNNER_POD_NAME",
        "ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER",
    ]
    assert runner["volumeMounts"] == [{"name": "work", "mountPath": "/home/runner/_work"}]
    assert spec["volumes"][0]["ephemeral"]["volumeClaimTemplate"]["spec"] == {
        "storageClassName": "zfs"
    }
    assert side == {"name": "side", "image": "s:1"}


def test_render_dind_mode_values() -> None:
    pod, mode, added = render_scale_set_values({"containerMode": {"type": "dind"}})
    assert mode == "dind" and added == {"dind", "init-dind-externals"}
    init = {c["name"]: c for c in pod["spec"]["initContainers"]}
    assert init["dind"]["securityContext"] == {"privileged": True}
    assert init["init-dind-externals"]["image"] == "ghcr.io/actions/actions-runner:latest"


WITH_MOUNT = {
    "containers": [
        {
            "name": "runner",
            "env": [
                {
                    "name": "ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE",
                    "value": "/home/runner/pod-template/content",
                }
            ],
            "volumeMounts": [
                {"name": "work", "mountPath": "/home/runner"},
                {"name": "tmpl", "mountPath": "/home/runner/pod-template"},
            ],
        }
    ],
    "volumes": [{"name": "tmpl", "configMap": {"name": "linux-hook-template"}}],
}


def pod_with(**changes: Any) -> dict[str, Any]:
    spec = yaml.safe_load(yaml.safe_dump(WITH_MOUNT))
    spec["containers"][0].update(changes.pop("container", {}))
    spec.update(changes)
    return {"spec": spec}


def test_template_mount_directory() -> None:
    mount = hook_template_mount(pod_with())
    assert mount is not None
    assert (mount.config_map, mount.key, mount.sub_path) == (
        "linux-hook-template",
        "content",
        False,
    )
    assert mount.mount_path == "/home/runner/pod-template"  # the longest covering mount wins


def test_template_mount_variants() -> None:
    items = pod_with(
        volumes=[
            {
                "name": "tmpl",
                "configMap": {"name": "cm", "items": [{"key": "job.yaml", "path": "content"}]},
            }
        ]
    )
    assert hook_template_mount(items).key == "job.yaml"  # type: ignore[union-attr]
    projected = pod_with(
        volumes=[{"name": "tmpl", "projected": {"sources": [{"configMap": {"name": "cm"}}]}}]
    )
    assert hook_template_mount(projected).config_map == "cm"  # type: ignore[union-attr]
    sub_path = pod_with(
        container={
            "volumeMounts": [
                {
                    "name": "tmpl",
                    "mountPath": "/home/runner/pod-template/content",
                    "subPath": "content",
                }
            ]
        }
    )
    mount = hook_template_mount(sub_path)
    assert mount is not None and mount.sub_path and mount.key == "content"
    no_env = pod_with(container={"env": []})
    assert hook_template_mount(no_env) is None
    unknown = pod_with(
        container={
            "env": [
                {
                    "name": "ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE",
                    "valueFrom": {"configMapKeyRef": {"name": "x", "key": "y"}},
                }
            ]
        }
    )
    assert hook_template_mount(unknown).path is UNKNOWN  # type: ignore[union-attr]
    empty_dir = pod_with(volumes=[{"name": "tmpl", "emptyDir": {}}])
    mount = hook_template_mount(empty_dir)
    assert mount is not None and mount.config_map is None and mount.mount_path is not None


def test_workload_targets_and_kinds() -> None:
    deployment = resource(
        "kubernetes:apps/v1:Deployment",
        {"metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": []}}}},
    )
    (target,) = pod_targets(deployment)
    assert target.kind is PodKind.WORKLOAD and target.prefix == "spec.template."
    assert pod_targets(deployment, (PodKind.JOB, PodKind.RUNNER)) == []
    patch = resource(
        "kubernetes:apps/v1:DeploymentPatch",
        {"metadata": {"name": "d"}, "spec": {"template": {"spec": {}}}},
    )
    assert pod_targets(patch) == []


def test_to_plain_unwraps_sdk_proxies_and_marks_unknowns() -> None:
    args = resource_args(declared(CM, "r", {"a": [1, {"b": UNKNOWN_STRING}], "c": UNKNOWN_STRING}))
    assert to_plain(args.props) == {"a": [1, {"b": UNKNOWN}], "c": UNKNOWN}
    (policy_resource,) = stack_args([declared(CM, "r", {"metadata": {"name": "x"}})]).resources
    assert Resource.of(policy_resource).object_name == "x"
