"""Stack policies: mounted hook templates, runner namespaces, and the exemption report."""

from __future__ import annotations

import copy

import pytest
import yaml

from policy.arc_policy.exemptions import ExemptionLedger
from policy.arc_policy.rules import exemptions_report, namespaces, pod_security, runner_mode
from policy.arc_policy.testing import (
    UNKNOWN_STRING,
    Declared,
    declared,
    run_pack,
    run_resource_policy,
    run_stack_policy,
)
from tests.test_policy_rules import RUNNER_SPEC, TEMPLATE, WORKLOAD, ars, template_cm

MOUNTED = runner_mode.MOUNTED_HOOK_TEMPLATES
NAMESPACES = namespaces.RUNNER_NAMESPACE_POD_SECURITY


def namespace(name: str, **labels: str) -> Declared:
    return declared(
        "kubernetes:core/v1:Namespace", name, {"metadata": {"name": name, "labels": labels}}
    )


RESTRICTED = namespace("arc-runners", **{"pod-security.kubernetes.io/enforce": "restricted"})


# --- mounted-hook-templates ----------------------------------------------------------------------


def test_labelled_template_mounted_by_a_runner_passes() -> None:
    assert run_stack_policy(MOUNTED, [template_cm(TEMPLATE), ars(RUNNER_SPEC)]) == []


def test_template_found_only_through_the_mount_is_checked() -> None:
    # No label, no $job container: only the runner's mount says this is a hook template.
    pod_only = {"spec": {"securityContext": {"runAsNonRoot": True}}}
    stack = [template_cm(pod_only, labelled=False), ars(RUNNER_SPEC)]
    for policy in (pod_security.NO_SERVICE_ACCOUNT_TOKEN,):
        assert run_resource_policy(policy, stack[0]) == []  # invisible to resource policies
    reported = run_stack_policy(MOUNTED, stack)
    rules = {message.split("[", 2)[-1].split("]")[0] for message, _ in reported}
    assert {
        "no-privilege-escalation",
        "drop-all-capabilities",
        "seccomp-profile",
        "no-service-account-token",
    } <= rules
    message, urn = next(r for r in reported if "[no-service-account-token]" in r[0])
    assert message.startswith("ConfigMap arc-runners/linux-hook-template (job pod)")
    assert urn == stack[0].urn
    assert 'label the ConfigMap arc-zfs-cache.io/hook-template: "true"' in message


def test_template_the_stack_does_not_declare() -> None:
    ((message, urn),) = run_stack_policy(MOUNTED, [ars(RUNNER_SPEC)])
    assert message.startswith("AutoscalingRunnerSet arc-runners/linux (runner pod)")
    assert "ConfigMap arc-runners/linux-hook-template, which this stack does not declare" in message
    assert urn == ars(RUNNER_SPEC).urn
    exempt = {"exemptions": [{"resource": "AutoscalingRunnerSet/arc-runners/linux", "reason": "x"}]}
    assert run_stack_policy(MOUNTED, [ars(RUNNER_SPEC)], exempt) == []


def test_template_key_missing_or_unparsable() -> None:
    wrong_key = declared(
        "kubernetes:core/v1:ConfigMap",
        "linux-hook-template",
        {
            "metadata": {"name": "linux-hook-template", "namespace": "arc-runners"},
            "data": {"template.yaml": "{}"},
        },
    )
    ((message, _),) = run_stack_policy(MOUNTED, [wrong_key, ars(RUNNER_SPEC)])
    assert "reads key 'content', which the ConfigMap does not have" in message
    broken = template_cm("- not\n- a mapping", labelled=False)
    ((message, _),) = run_stack_policy(MOUNTED, [broken, ars(RUNNER_SPEC)])
    assert "does not parse as a YAML mapping" in message
    labelled_broken = template_cm("key: [unclosed")
    ((message, _),) = run_stack_policy(MOUNTED, [labelled_broken])
    assert "labelled hook template does not parse" in message


def test_mounted_template_unknown_in_preview() -> None:
    assert (
        run_stack_policy(MOUNTED, [template_cm(UNKNOWN_STRING, labelled=False), ars(RUNNER_SPEC)])
        == []
    )


# --- runner-namespace-pod-security -------------------------------------------------------------


def test_restricted_runner_namespace_passes() -> None:
    assert run_stack_policy(NAMESPACES, [RESTRICTED, ars(RUNNER_SPEC)]) == []


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({}, "pod-security.kubernetes.io/enforce is missing"),
        ({"pod-security.kubernetes.io/enforce": "privileged"}, "is 'privileged'"),
        ({"pod-security.kubernetes.io/warn": "restricted"}, "is missing"),
        (
            {"pod-security.kubernetes.io/enforce": "baseline"},
            "enforce: baseline (no reason configured)",
        ),
    ],
)
def test_runner_namespace_without_restricted(labels: dict[str, str], expected: str) -> None:
    ns = namespace("arc-runners", **labels)
    ((message, urn),) = run_stack_policy(NAMESPACES, [ns, ars(RUNNER_SPEC)])
    assert message.startswith(
        "Namespace arc-runners: metadata.labels[pod-security.kubernetes.io/enforce]"
    )
    assert expected in message and "AutoscalingRunnerSet arc-runners/linux" in message
    assert urn == ns.urn


def test_baseline_with_a_reason_is_allowed_and_listed() -> None:
    ns = namespace("arc-runners", **{"pod-security.kubernetes.io/enforce": "baseline"})
    config = {
        "baselineNamespaces": [
            {"namespace": "arc-runners", "reason": "runner image needs a writable /etc"}
        ]
    }
    ledger = ExemptionLedger()  # one run: the namespace policy records, the report reads
    assert run_stack_policy(NAMESPACES, [ns, ars(RUNNER_SPEC)], config, ledger) == []
    ((message, _),) = run_stack_policy(exemptions_report.POLICY_EXEMPTIONS, [], None, ledger)
    assert "Namespace arc-runners is exempt from policy 'runner-namespace-pod-security'" in message
    assert "enforces baseline, not restricted: runner image needs a writable /etc" in message


def test_undeclared_namespace_and_job_namespace() -> None:
    ((message, urn),) = run_stack_policy(NAMESPACES, [ars(RUNNER_SPEC)])
    assert "runner namespace 'arc-runners'" in message and "not declared in this stack" in message
    assert urn is None  # a stack-level violation
    exempt = {
        "exemptions": [{"resource": "Namespace//arc-runners", "reason": "cluster team labels it"}]
    }
    assert run_stack_policy(NAMESPACES, [ars(RUNNER_SPEC)], exempt) == []
    spec = copy.deepcopy(RUNNER_SPEC)
    spec["containers"][0]["env"].append(
        {"name": "ACTIONS_RUNNER_KUBERNETES_NAMESPACE", "value": "jobs"}
    )
    ((message, _),) = run_stack_policy(NAMESPACES, [RESTRICTED, ars(spec)])
    assert "runner namespace 'jobs'" in message


def test_namespace_labels_unknown_in_preview() -> None:
    ns = declared(
        "kubernetes:core/v1:Namespace",
        "arc-runners",
        {"metadata": {"name": "arc-runners", "labels": UNKNOWN_STRING}},
    )
    assert run_stack_policy(NAMESPACES, [ns, ars(RUNNER_SPEC)]) == []


def test_namespace_patch_counts() -> None:
    patch = declared(
        "kubernetes:core/v1:NamespacePatch",
        "arc-runners",
        {
            "metadata": {
                "name": "arc-runners",
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            }
        },
    )
    assert run_stack_policy(NAMESPACES, [patch, ars(RUNNER_SPEC)]) == []


# --- policy-exemptions ----------------------------------------------------------------------------


def test_exemptions_are_reported_after_the_run() -> None:
    config = {
        "no-privileged-workloads": {
            "exemptions": [
                {"resource": "DaemonSet/openebs/*zfs-localpv-node", "reason": "CSI node plugin"},
                {"resource": "DaemonSet/kube-system/old-thing", "reason": "gone"},
            ]
        }
    }
    report = run_pack([WORKLOAD], config)
    assert report.by_policy("no-privileged-workloads") == []
    messages = report.by_policy("policy-exemptions")
    assert messages == [
        "DaemonSet openebs/zfs-localpv-node is exempt from policy 'no-privileged-workloads' "
        "(exemption 'DaemonSet/openebs/*zfs-localpv-node'): CSI node plugin",
        "exemption 'DaemonSet/kube-system/old-thing' of policy 'no-privileged-workloads' matched "
        "no resource in this stack (gone): remove it or fix the name",
    ]
    assert all(v.level.value == "advisory" for v in report.violations)
    assert run_stack_policy(exemptions_report.POLICY_EXEMPTIONS, []) == []  # a new run: empty


def test_without_exemption_the_workload_blocks() -> None:
    report = run_pack([WORKLOAD])
    assert {v.policy for v in report.blocking} == {"no-privileged-workloads"}


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ValueError, match=r"exemptions\[0\]\.reason: required"):
        run_resource_policy(
            pod_security.NO_PRIVILEGED_WORKLOADS, WORKLOAD, {"exemptions": [{"resource": "a/b/c"}]}
        )
    with pytest.raises(ValueError, match="must be Kind/namespace/name"):
        run_resource_policy(
            pod_security.NO_PRIVILEGED_WORKLOADS,
            WORKLOAD,
            {"exemptions": [{"resource": "zfs", "reason": "r"}]},
        )
    with pytest.raises(ValueError, match=r"allowedUids\[0\]: expected a uid > 0"):
        run_stack_policy(MOUNTED, [WORKLOAD], {"allowedUids": [0]})


def test_hook_template_yaml_round_trip_is_stable() -> None:
    # The fixture helpers write templates as YAML, the way programs do.
    assert yaml.safe_load(template_cm(TEMPLATE).props["data"]["content"]) == TEMPLATE
