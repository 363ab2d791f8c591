"""hook-pod-security: the job and step pods hooks 0.7 and 0.8 create, held to the namespace's
Pod Security level (policy/arc_policy/rules/hook_pods.py)."""

from __future__ import annotations

from typing import Any

import pytest

from policy.arc_policy.config import Settings
from policy.arc_policy.hook_merge import HOOK_0_7, HOOK_VERSIONS, RunnerContext, WorkflowContainer
from policy.arc_policy.model import PodKind, PodTarget, ResourceRef
from policy.arc_policy.rules import hook_pods
from policy.arc_policy.rules.levels import level_findings
from policy.arc_policy.testing import UNKNOWN_STRING, Declared, declared, run_pack, run_stack_policy
from tests.test_policy_rules import TEMPLATE, kube_values, release, template_cm, tweak

POLICY = hook_pods.HOOK_POD_SECURITY
REF = ResourceRef("kubernetes:core/v1:ConfigMap", "ConfigMap", "arc-runners", "t")
#: kubernetes-novolume values: the chart adds hook 0.8's entry point (none set explicitly).
NOVOLUME = tweak(
    kube_values(containerMode={"type": "kubernetes-novolume"}),
    "template.spec.containers.0.env",
    [
        e
        for e in kube_values()["template"]["spec"]["containers"][0]["env"]
        if e["name"] != "ACTIONS_RUNNER_CONTAINER_HOOKS"
    ],
)
FS_INIT_HARDENED = {
    "name": "fs-init",
    "image": "ghcr.io/actions/actions-runner:2.336.0",
    "command": ["sh", "-c", "mv /home/runner/externals/* /mnt/externals/"],
    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    "volumeMounts": [{"name": "externals", "mountPath": "/mnt/externals"}],
}


def namespace(level: str | None, name: str = "arc-runners") -> Declared:
    labels = {"pod-security.kubernetes.io/enforce": level} if level else {}
    return declared(
        "kubernetes:core/v1:Namespace", name, {"metadata": {"name": name, "labels": labels}}
    )


def messages(*resources: Declared, config: dict[str, Any] | None = None) -> list[str]:
    return [message for message, _ in run_stack_policy(POLICY, resources, config)]


def test_compliant_kubernetes_scale_set_passes() -> None:
    assert messages(namespace("restricted"), release(kube_values()), template_cm(TEMPLATE)) == []


def test_the_runners_entry_point_picks_the_hook() -> None:
    # An explicit ACTIONS_RUNNER_CONTAINER_HOOKS wins over the mode (the chart keeps it).
    explicit = kube_values(containerMode={"type": "kubernetes-novolume"})
    assert messages(namespace("restricted"), release(explicit), template_cm(TEMPLATE)) == []


def test_novolume_scale_set_in_restricted_namespace_is_rejected_for_fs_init() -> None:
    stack = [namespace("restricted"), release(NOVOLUME), template_cm(TEMPLATE)]
    found = messages(*stack)
    assert len(found) == 2 and all("container 'fs-init'" in m for m in found)
    escalation = next(m for m in found if "securityContext.allowPrivilegeEscalation:" in m)
    assert escalation.startswith(
        "Release arc-runners/linux (job pod of runner-container-hooks 0.8.1), container "
        "'fs-init': runner-container-hooks 0.8.1 job pod: "
        "spec.initContainers[fs-init].securityContext.allowPrivilegeEscalation: namespace "
        "'arc-runners' enforces Pod Security restricted and would reject the job pod of "
        "runner-container-hooks 0.8.1 of this scale set"
    )
    assert "Fix: replace fs-init through the hook template's spec.initContainers" in escalation
    assert any("capabilities.drop" in m for m in found)
    # Mandatory: the pack blocks the deployment.
    assert any(v.policy == "hook-pod-security" for v in run_pack(stack).blocking)


def test_a_template_that_replaces_fs_init_passes() -> None:
    template = tweak(TEMPLATE, "spec.initContainers", [FS_INIT_HARDENED])
    assert messages(namespace("restricted"), release(NOVOLUME), template_cm(template)) == []


def test_fs_group_goes_but_fs_init_still_needs_a_non_root_pod() -> None:
    # A template securityContext replaces the hook's fsGroup; without runAsNonRoot and seccomp
    # on the pod, fs-init (uid 1001 only) is rejected for those too.
    template = tweak(TEMPLATE, "spec.securityContext", {"fsGroup": 1001})
    found = messages(namespace("restricted"), release(NOVOLUME), template_cm(template))
    fs_init = [m for m in found if "container 'fs-init'" in m]
    assert {f for f in ("runAsNonRoot", "seccompProfile") if any(f in m for m in fs_init)} == {
        "runAsNonRoot",
        "seccompProfile",
    }


def test_baseline_and_privileged_namespaces_admit_fs_init() -> None:
    for level in ("baseline", "privileged", None):
        assert messages(namespace(level), release(NOVOLUME), template_cm(TEMPLATE)) == []


def test_template_fields_are_left_to_the_job_pod_rules() -> None:
    # A sidecar or service entry without securityContext breaks the job pod (and the step pod)
    # of either hook: the job pod rules report it on the ConfigMap, once, remediable there.
    sidecar = tweak(TEMPLATE, "spec.containers.1", {"name": "sidecar", "image": "envoy:1.33"})
    redis = tweak(TEMPLATE, "spec.containers.1", {"name": "$redis"})
    for template in (sidecar, redis):
        replaced = tweak(template, "spec.initContainers", [FS_INIT_HARDENED])
        for values in (kube_values(), NOVOLUME):
            stack = [namespace("restricted"), release(values), template_cm(replaced)]
            assert messages(*stack) == []
        blocking = {
            v.policy for v in run_pack([namespace("restricted"), template_cm(template)]).blocking
        }
        assert "no-privilege-escalation" in blocking


def test_bare_pods_of_a_novolume_runner_are_reported_once_for_both_pods() -> None:
    values = tweak(NOVOLUME, "template.spec.containers.0.env", [])
    found = messages(namespace("restricted"), release(values))
    escalation = [m for m in found if "securityContext.allowPrivilegeEscalation:" in m]
    assert len(escalation) == 2  # the job container (job and step pods) and fs-init
    job = next(m for m in escalation if "container '$job'" in m)
    assert "(job pod and step pod of runner-container-hooks 0.8.1)" in job
    assert "the hook's bare pod (no hook template): spec.containers[$job]" in job
    assert "mount a hook template ConfigMap" in job
    # Hook 0.7's bare job pod is the job pod rules' (on the release), not this policy's.
    bare_0_7 = tweak(kube_values(), "template.spec.containers.0.env", [])
    assert messages(namespace("restricted"), release(bare_0_7)) == []
    assert "no-privilege-escalation" in {v.policy for v in run_pack([release(bare_0_7)]).blocking}


def test_pods_land_in_the_hook_namespace() -> None:
    env = [
        *NOVOLUME["template"]["spec"]["containers"][0]["env"],
        {"name": "ACTIONS_RUNNER_KUBERNETES_NAMESPACE", "value": "jobs"},
    ]
    values = tweak(NOVOLUME, "template.spec.containers.0.env", env)
    stack = [namespace("baseline"), namespace("restricted", "jobs"), release(values)]
    found = messages(*stack, template_cm(TEMPLATE))
    assert found and all("namespace 'jobs' enforces Pod Security restricted" in m for m in found)


def test_what_the_pack_cannot_see_is_left_to_other_policies() -> None:
    restricted = namespace("restricted")
    assert messages(restricted, release(NOVOLUME)) == []  # template undeclared
    assert messages(restricted, release(NOVOLUME), template_cm(UNKNOWN_STRING)) == []
    assert messages(restricted, release(NOVOLUME), template_cm("- not a mapping")) == []
    assert messages(release(NOVOLUME), template_cm(TEMPLATE)) == []  # namespace undeclared
    dind = kube_values(containerMode={"type": "dind"})
    assert messages(restricted, release(dind), template_cm(TEMPLATE)) == []


def test_exempt_scale_set() -> None:
    config = {"exemptions": [{"resource": "Release/arc-runners/linux", "reason": "trial"}]}
    stack = [namespace("restricted"), release(NOVOLUME), template_cm(TEMPLATE)]
    assert messages(*stack, config=config) == []


EDITS: list[tuple[str, Any]] = [
    ("spec.securityContext", {}),
    ("spec.securityContext.runAsNonRoot", False),
    ("spec.securityContext.seccompProfile", {"type": "Unconfined"}),
    ("spec.containers.0.securityContext", {}),
    ("spec.containers.0.securityContext.privileged", True),
    ("spec.containers.0.ports", [{"containerPort": 80, "hostPort": 80}]),
    ("spec.containers.1", {"name": "$redis"}),
    ("spec.containers.1", {"name": "sidecar", "image": "envoy:1.33"}),
    ("spec.initContainers", [{"name": "init", "image": "busybox:1.37"}]),
    ("spec.hostNetwork", True),
    ("spec.volumes", [{"name": "host", "hostPath": {"path": "/"}}]),
]


@pytest.mark.parametrize(("path", "value"), EDITS, ids=[f"{p}={v!r}"[:50] for p, v in EDITS])
def test_every_hook_pod_breaks_only_where_the_0_7_job_pod_does(path: str, value: Any) -> None:
    """Why template fields are the job pod rules' alone: whatever a template field breaks in
    any hook pod (0.8's job pod, either step pod), it breaks in 0.7's job pod too."""
    template = tweak(TEMPLATE, path, value)

    def broken(pod: dict[str, Any]) -> set[tuple[str, str, str]]:
        target = PodTarget(PodKind.JOB, REF, pod, "data.content: ", {"job": "$job"})
        return {
            (f.container, f.path, f.problem)
            for f in level_findings(target, "restricted", Settings())
            if f.container != "fs-init"
        }

    job_0_7 = broken(HOOK_0_7.job_pod(template, WorkflowContainer(), None, RunnerContext()))
    for hook in HOOK_VERSIONS:
        assert broken(hook.job_pod(template, WorkflowContainer(), None, RunnerContext())) <= job_0_7
        assert broken(hook.step_pod(template, WorkflowContainer(), RunnerContext())) <= job_0_7
    assert job_0_7  # each edit breaks something
