"""The listener pod as ARC 0.14.2 builds it, and the policy holding it to its namespace's level."""

from __future__ import annotations

from typing import Any

import kubernetes_validate

from components.hook_template import listener_template
from policy.arc_policy.listener import base_listener_pod, listener_pod, merge_listener_pod
from policy.arc_policy.rules import listener
from policy.arc_policy.testing import Declared, declared, run_stack_policy

K8S_VERSION = "1.34.0"
POLICY = listener.LISTENER_POD_SECURITY
RELEASE = "kubernetes:helm.sh/v3:Release"


def namespace(name: str, level: str | None) -> Declared:
    labels = {"pod-security.kubernetes.io/enforce": level} if level else {}
    return declared(
        "kubernetes:core/v1:Namespace", name, {"metadata": {"name": name, "labels": labels}}
    )


def scale_set(values: dict[str, Any]) -> Declared:
    return declared(
        RELEASE,
        "linux",
        {
            "chart": "oci://ghcr.io/actions/actions-runner-controller-charts/gha-runner-scale-set",
            "namespace": "arc-runners",
            "values": {
                "githubConfigUrl": "https://github.com/acme",
                "githubConfigSecret": "creds",
                "containerMode": {"type": "kubernetes"},
                "controllerServiceAccount": {"namespace": "arc-systems", "name": "arc-gha-rs"},
                **values,
            },
        },
    )


def controller_chart(ns: str) -> Declared:
    return declared(
        RELEASE,
        "arc",
        {
            "chart": "oci://ghcr.io/actions/actions-runner-controller-charts/"
            "gha-runner-scale-set-controller",
            "namespace": ns,
        },
    )


# --- the model -------------------------------------------------------------------------------


def test_base_listener_pod_has_no_security_context() -> None:
    pod = base_listener_pod()
    assert "securityContext" not in pod["spec"]
    assert "securityContext" not in pod["spec"]["containers"][0]
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["terminationGracePeriodSeconds"] == 60


def test_template_replaces_pod_fields_even_when_unset() -> None:
    merged = merge_listener_pod(base_listener_pod(), {"spec": {}})
    # terminationGracePeriodSeconds is replaced by the template's (nil): the default 30 applies.
    assert "terminationGracePeriodSeconds" not in merged["spec"]
    # restartPolicy and nodeSelector are only taken when the template sets them.
    assert merged["spec"]["restartPolicy"] == "Never"
    assert merged["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}


def test_listener_container_merge() -> None:
    template = {
        "metadata": {"labels": {"team": "ci"}},
        "spec": {
            "containers": [
                {
                    "name": "listener",
                    "env": [{"name": "X", "value": "1"}],
                    "securityContext": {"runAsNonRoot": True},
                },
                {"name": "sidecar", "image": "busybox:1"},
            ]
        },
    }
    merged = merge_listener_pod(base_listener_pod(), template)
    first, second = merged["spec"]["containers"]
    assert [e["name"] for e in first["env"]] == ["LISTENER_CONFIG_PATH", "X"]
    assert first["image"].startswith("ghcr.io/actions/gha-runner-scale-set-controller:")
    assert first["securityContext"] == {"runAsNonRoot": True}
    assert second["name"] == "sidecar"
    assert merged["metadata"]["labels"]["team"] == "ci"


def test_program_listener_pod_is_a_valid_pod() -> None:
    pod = listener_pod(listener_template())
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    assert pod["spec"]["terminationGracePeriodSeconds"] == 60
    assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


# --- the policy ------------------------------------------------------------------------------


def test_listener_without_template_is_rejected_in_a_restricted_controller_namespace() -> None:
    reported = run_stack_policy(POLICY, [namespace("arc-systems", "restricted"), scale_set({})])
    text = "\n".join(message for message, _ in reported)
    assert "namespace 'arc-systems' enforces Pod Security restricted" in text
    for field in ("allowPrivilegeEscalation", "capabilities", "runAsNonRoot", "seccomp"):
        assert field in text, field
    assert "values.listenerTemplate.spec.containers[listener]" in text


def test_program_listener_template_passes_restricted() -> None:
    stack = [
        namespace("arc-systems", "restricted"),
        scale_set({"listenerTemplate": listener_template()}),
    ]
    assert run_stack_policy(POLICY, stack) == []


def test_levels_baseline_privileged_and_undeclared() -> None:
    assert run_stack_policy(POLICY, [namespace("arc-systems", "baseline"), scale_set({})]) == []
    assert run_stack_policy(POLICY, [namespace("arc-systems", None), scale_set({})]) == []
    assert run_stack_policy(POLICY, [scale_set({})]) == []
    privileged = {
        "spec": {"containers": [{"name": "listener", "securityContext": {"privileged": True}}]}
    }
    ((message, _),) = run_stack_policy(
        POLICY, [namespace("arc-systems", "baseline"), scale_set({"listenerTemplate": privileged})]
    )
    assert "enforces Pod Security baseline" in message and "privileged" in message


def test_controller_namespace_from_the_controller_chart() -> None:
    ars = declared(
        "kubernetes:actions.github.com/v1alpha1:AutoscalingRunnerSet",
        "linux",
        {
            "apiVersion": "actions.github.com/v1alpha1",
            "kind": "AutoscalingRunnerSet",
            "metadata": {"name": "linux", "namespace": "arc-runners"},
            "spec": {"template": {"spec": {"containers": [{"name": "runner"}]}}},
        },
    )
    stack = [namespace("ci-control", "restricted"), controller_chart("ci-control"), ars]
    reported = run_stack_policy(POLICY, stack)
    assert reported and all("'ci-control'" in m for m, _ in reported)
    assert all("spec.listenerTemplate." in m for m, _ in reported)
    exempt = {
        "exemptions": [
            {"resource": "AutoscalingRunnerSet/arc-runners/linux", "reason": "listener elsewhere"}
        ]
    }
    assert run_stack_policy(POLICY, stack, exempt) == []
