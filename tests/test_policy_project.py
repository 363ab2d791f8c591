"""The whole pack on realistic stacks: this project's own resources pass; other teams' fail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from components.config import validate_config
from policy.arc_policy.discovery import Resource, pod_targets
from policy.arc_policy.model import PodKind
from policy.arc_policy.testing import Declared, declared, resource_args, run_pack
from tests.harness import deploy

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "policy"
PACK_CONFIG = json.loads((ROOT / "policy" / "policy-config.json").read_text())
K8S_VERSION = "1.34.0"


def load_stack(name: str) -> list[Declared]:
    """Resources of a fixture file (``type``, ``name``, ``props``, optional ``parent`` name)."""
    items = yaml.safe_load((DATA / name).read_text())
    types = {item["name"]: item["type"] for item in items}
    return [
        declared(
            item["type"],
            item["name"],
            item["props"],
            parent=declared(types[item["parent"]], item["parent"], {}).urn
            if item.get("parent")
            else None,
        )
        for item in items
    ]


def test_project_preview_passes_with_its_policy_config() -> None:
    """What `pulumi preview` shows of this project (rendered chart children) passes."""
    report = run_pack(load_stack("project_stack.yaml"), PACK_CONFIG)
    assert report.blocking == []
    (exemption,) = report.by_policy("policy-exemptions")
    assert exemption.startswith(
        "DaemonSet openebs/zfs-localpv-node is exempt from policy 'no-privileged-workloads'"
    )


def test_project_needs_its_explicit_exemption() -> None:
    report = run_pack(load_stack("project_stack.yaml"))
    assert {v.policy for v in report.blocking} == {"no-privileged-workloads"}
    assert all("DaemonSet openebs/zfs-localpv-node" in v.message for v in report.blocking)


def test_project_job_pod_is_valid_and_found_three_ways() -> None:
    stack = load_stack("project_stack.yaml")
    config_map = next(r for r in stack if r.type == "kubernetes:core/v1:ConfigMap")
    (target,) = pod_targets(Resource.of(resource_args(config_map)), (PodKind.JOB,))
    kubernetes_validate.validate(
        {"apiVersion": "v1", "kind": "Pod", **target.pod}, K8S_VERSION, strict=True
    )
    spec = target.pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsUser"] == 1001
    assert [v["name"] for v in spec["volumes"]] == ["work", "cache-gcc12"]


@pytest.fixture
def program(minimal_raw: dict[str, Any]) -> list[Declared]:
    """The resources the real program registers for tests/data/minimal_stack.yaml (mocks)."""
    deployment = deploy(validate_config(minimal_raw))
    return [declared(r.typ, r.name, r.inputs) for r in deployment.resources]


def test_real_program_passes(program: list[Declared]) -> None:
    """Under mocks the v4 Charts carry their values: the pack renders their runner pods."""
    report = run_pack(program, PACK_CONFIG)
    assert report.blocking == [], [v.message for v in report.blocking]
    runners = [
        t for r in program for t in pod_targets(Resource.of(resource_args(r)), (PodKind.RUNNER,))
    ]
    jobs = [t for r in program for t in pod_targets(Resource.of(resource_args(r)), (PodKind.JOB,))]
    assert runners and jobs, "the pack must see the program's runner and job pods"


def test_other_teams_setup_fails_with_each_rule_named() -> None:
    """The blog-post setup: works, but is privileged-by-default in every way the pack checks."""
    report = run_pack(load_stack("seed_demo.yaml"))
    expected = {
        "no-privilege-escalation",
        "drop-all-capabilities",
        "run-as-non-root",
        "seccomp-profile",
        "no-service-account-token",
        "pinned-images",
        "no-inline-credentials",
        "runner-namespace-pod-security",
    }
    assert expected <= {v.policy for v in report.blocking}
    (token,) = report.by_policy("no-service-account-token")
    assert token.startswith(
        "ConfigMap arc-runners/github-arc-container-hooks (job pod): "
        "data.content: spec.automountServiceAccountToken"
    )
    (inline,) = report.by_policy("no-inline-credentials")
    assert "Release arc-runners/arc-runner-set" in inline and "values.githubConfigSecret" in inline


# The violations the issue lists, declared the way other teams would, each named by its rule.
RUNNER = {
    "name": "runner",
    "image": "ghcr.io/actions/actions-runner:2.324.0",
    "securityContext": {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "env": [{"name": "ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE", "value": "/tmpl/content"}],
    "volumeMounts": [{"name": "tmpl", "mountPath": "/tmpl"}],
}
GOOD_TEMPLATE: dict[str, Any] = {
    "spec": {
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "$job",
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
    }
}


def team_stack(
    *,
    values: dict[str, Any] | None = None,
    runner: dict[str, Any] | None = None,
    template: dict[str, Any] | None = None,
    template_spec: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
) -> list[Declared]:
    """A namespace, a labelled hook template and a v3 Release, each part overridable."""
    chart_values: dict[str, Any] = {
        "githubConfigUrl": "https://github.com/acme",
        "githubConfigSecret": "arc-creds",
        "containerMode": {"type": "kubernetes"},
        "template": {
            "spec": {
                "containers": [{**RUNNER, **(runner or {})}],
                "volumes": [{"name": "tmpl", "configMap": {"name": "tmpl"}}],
            }
        },
        **(values or {}),
    }
    hook_template = json.loads(json.dumps(template or GOOD_TEMPLATE))
    hook_template["spec"].update(template_spec or {})
    enforce = {"pod-security.kubernetes.io/enforce": "restricted"}
    return [
        declared(
            "kubernetes:core/v1:Namespace",
            "ci",
            {"metadata": {"name": "ci", "labels": enforce if labels is None else labels}},
        ),
        declared(
            "kubernetes:core/v1:ConfigMap",
            "tmpl",
            {
                "metadata": {
                    "name": "tmpl",
                    "namespace": "ci",
                    "labels": {"arc-zfs-cache.io/hook-template": "true"},
                },
                "data": {"content": yaml.safe_dump(hook_template)},
            },
        ),
        declared(
            "kubernetes:helm.sh/v3:Release",
            "runners",
            {"chart": "gha-runner-scale-set", "namespace": "ci", "values": chart_values},
        ),
    ]


def privileged_job() -> dict[str, Any]:
    template = json.loads(json.dumps(GOOD_TEMPLATE))
    template["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    return template


def test_team_baseline_passes() -> None:
    assert run_pack(team_stack()).blocking == []
    # Without a hook template, the hook's bare job pod is what runs: it fails the job rules.
    bare = run_pack(team_stack(runner={"env": [], "volumeMounts": []})).blocking
    assert {"no-service-account-token", "no-privilege-escalation"} <= {v.policy for v in bare}


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"template": privileged_job()}, "no-privileged-containers"),
        ({"values": {"containerMode": {"type": "dind"}}}, "runner-container-mode"),
        (
            {
                "template_spec": {
                    "volumes": [{"name": "d", "hostPath": {"path": "/var/run/docker.sock"}}]
                }
            },
            "no-host-access",
        ),
        (
            {
                "template_spec": {
                    "securityContext": {
                        "runAsUser": 0,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    }
                }
            },
            "run-as-non-root",
        ),
        ({"runner": {"image": "ghcr.io/actions/actions-runner:latest"}}, "pinned-images"),
        ({"values": {"githubConfigSecret": {"github_token": "ghp_x"}}}, "no-inline-credentials"),
        ({"labels": {}}, "runner-namespace-pod-security"),
    ],
    ids=["privileged-job", "dind", "hostPath", "uid-0", "latest", "inline-token", "no-psa-labels"],
)
def test_each_violation_is_named_by_its_rule(change: dict[str, Any], rule: str) -> None:
    assert rule in {v.policy for v in run_pack(team_stack(**change)).blocking}
