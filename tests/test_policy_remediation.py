"""Remediation (enforcement level ``remediate``): safe fixes of escalation and capabilities."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from pulumi_policy import Secret

from policy.arc_policy.exemptions import ExemptionLedger
from policy.arc_policy.rules import container_security as cs
from policy.arc_policy.testing import (
    UNKNOWN_STRING,
    Declared,
    declared,
    remediation_args,
    run_resource_policy,
)
from tests.test_policy_rules import (
    RUNNER_SPEC,
    TEMPLATE,
    WORKLOAD,
    ars,
    kube_values,
    release,
    template_cm,
    tweak,
)

ESCALATION = cs.NO_PRIVILEGE_ESCALATION
CAPABILITIES = cs.DROP_ALL_CAPABILITIES


def remediate(policy: Any, resource: Declared, config: dict[str, Any] | None = None) -> Any:
    return policy.policy(ExemptionLedger()).remediate(remediation_args(resource, config))


def test_template_without_job_entry_gets_one() -> None:
    bare = template_cm({"spec": {"securityContext": {"runAsNonRoot": True}}})
    props = remediate(ESCALATION, bare)
    content = yaml.safe_load(props["data"]["content"])
    assert content["spec"]["containers"] == [
        {"name": "$job", "securityContext": {"allowPrivilegeEscalation": False}}
    ]
    assert content["spec"]["securityContext"] == {"runAsNonRoot": True}  # the rest is kept
    fixed = declared(bare.type, bare.name, props)
    assert run_resource_policy(ESCALATION, fixed) == []


def test_every_declared_container_and_never_a_privileged_one() -> None:
    template = tweak(TEMPLATE, "spec.containers.0.securityContext", {})
    template = tweak(template, "spec.containers.1", {"name": "warm", "image": "busybox:1.37"})
    template = tweak(
        template,
        "spec.containers.2",
        {"name": "dind", "image": "docker:28-dind", "securityContext": {"privileged": True}},
    )
    template = tweak(
        template,
        "spec.initContainers",
        [
            {
                "name": "init",
                "image": "busybox:1.37",
                "securityContext": {"capabilities": {"drop": ["NET_RAW"]}},
            }
        ],
    )
    props = remediate(CAPABILITIES, template_cm(template))
    spec = yaml.safe_load(props["data"]["content"])["spec"]
    job, warm, dind = spec["containers"]
    assert job["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert warm["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert dind["securityContext"] == {"privileged": True}  # left alone
    assert spec["initContainers"][0]["securityContext"]["capabilities"]["drop"] == [
        "NET_RAW",
        "ALL",
    ]


def test_runner_set_and_release_values() -> None:
    spec = tweak(RUNNER_SPEC, "containers.0.securityContext", {})
    props = remediate(ESCALATION, ars(spec))
    runner = props["spec"]["template"]["spec"]["containers"][0]
    assert runner["securityContext"] == {"allowPrivilegeEscalation": False}
    values = kube_values(githubConfigSecret={"github_token": Secret("ghp_secret")})
    values["template"]["spec"]["containers"][0]["securityContext"] = {}
    props = remediate(CAPABILITIES, release(values))
    assert props["values"]["template"]["spec"]["containers"][0]["securityContext"] == {
        "capabilities": {"drop": ["ALL"]}
    }
    # Secrets stay wrapped, so the engine keeps them secret.
    token = props["values"]["githubConfigSecret"]["github_token"]
    assert isinstance(token, Secret) and token.value == "ghp_secret"


def test_nothing_to_do() -> None:
    assert remediate(ESCALATION, template_cm(TEMPLATE)) is None
    assert remediate(ESCALATION, ars(RUNNER_SPEC)) is None
    assert remediate(ESCALATION, WORKLOAD) is None  # other workloads are never rewritten
    assert remediate(ESCALATION, template_cm(UNKNOWN_STRING)) is None
    unknown_field = tweak(
        RUNNER_SPEC, "containers.0.securityContext.allowPrivilegeEscalation", UNKNOWN_STRING
    )
    assert remediate(ESCALATION, ars(unknown_field)) is None


def test_unknowns_elsewhere_are_kept() -> None:
    spec = tweak(RUNNER_SPEC, "containers.0.securityContext", {})
    spec = tweak(spec, "containers.0.image", UNKNOWN_STRING)
    props = remediate(ESCALATION, ars(spec))
    assert props["spec"]["template"]["spec"]["containers"][0]["image"] == UNKNOWN_STRING


def test_exempt_resources_are_not_remediated() -> None:
    spec = tweak(RUNNER_SPEC, "containers.0.securityContext", {})
    config = {"exemptions": [{"resource": "AutoscalingRunnerSet/arc-runners/linux", "reason": "r"}]}
    assert remediate(ESCALATION, ars(spec), config) is None


def test_input_is_not_modified() -> None:
    resource = template_cm({"spec": {}})
    before = copy.deepcopy(dict(resource.props))
    remediate(ESCALATION, resource)
    assert dict(resource.props) == before
