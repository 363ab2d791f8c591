"""The policy pack through the real Pulumi CLI: ``pulumi preview --policy-pack policy``.

The engine, the policy-pack plugin protocol, policy config files and the CLI's report are
real; the resources are stand-ins (tests/e2e/programs/policy_standin: components carrying the
Kubernetes type tokens and objects), because pulumi-resource-kubernetes cannot be built by the
toolchain yet. Scenarios: this project's preview-shaped resources pass with its policy config;
an other team's setup and each violation the issue lists fail, with the rule named.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from policy.arc_policy.testing import Declared
from tests.test_policy_project import privileged_job, team_stack

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = Path(__file__).resolve().parent / "programs" / "policy_standin"
POLICY = ROOT / "policy"
DATA = ROOT / "tests" / "data" / "policy"
FIX_COMMAND = 'scripts/toolchain.sh && eval "$(scripts/toolchain.sh env)"'


@pytest.fixture(scope="module")
def cli() -> dict[str, str]:
    """Environment for the pulumi CLI: the repo's Python, no plugin downloads."""
    if shutil.which("pulumi") is None:
        pytest.fail(
            f"the policy e2e tests need the pulumi CLI on PATH.\nFix: {FIX_COMMAND}",
            pytrace=False,
        )
    return {
        **os.environ,
        "PULUMI_CONFIG_PASSPHRASE": "policy-e2e",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "NO_COLOR": "1",
    }


def preview(
    cli: dict[str, str], tmp_path: Path, resources: list[dict[str, Any]], *extra: str
) -> subprocess.CompletedProcess[str]:
    """``pulumi preview --policy-pack policy`` of a fresh stack declaring ``resources``."""
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(resources, sort_keys=False))
    project = tmp_path / "program"
    shutil.copytree(PROGRAM, project)
    manifest = yaml.safe_load((project / "Pulumi.yaml").read_text())
    manifest["runtime"]["options"]["virtualenv"] = str(ROOT / ".venv")
    (project / "Pulumi.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    (tmp_path / "state").mkdir()
    env = {
        **cli,
        "POLICY_SCENARIO": str(scenario),
        "PULUMI_BACKEND_URL": f"file://{tmp_path / 'state'}",
    }

    def pulumi(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["pulumi", *args, "--non-interactive", "--cwd", str(project)],
            capture_output=True,
            text=True,
            env=env,
            stdin=subprocess.DEVNULL,
            timeout=300,
            check=False,
        )

    created = pulumi("stack", "init", "e2e")
    assert created.returncode == 0, created.stderr
    return pulumi("preview", "--stack", "e2e", "--policy-pack", str(POLICY), *extra)


def fixture(name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = yaml.safe_load((DATA / name).read_text())
    return items


def as_items(resources: list[Declared]) -> list[dict[str, Any]]:
    return [
        {"type": r.type, "name": r.name, "props": json.loads(json.dumps(asdict(r)["props"]))}
        for r in resources
    ]


def blocking_rules(output: str) -> set[str]:
    """Policy names of the mandatory violations in the CLI's report."""
    rules = set()
    for raw in output.splitlines():
        line = raw.strip()
        if line.startswith("- [mandatory]"):
            rules.add(line.split("]")[-1].split()[0])
    return rules


def test_project_passes_with_its_policy_config(cli: dict[str, str], tmp_path: Path) -> None:
    result = preview(
        cli,
        tmp_path,
        fixture("project_stack.yaml"),
        "--policy-pack-config",
        str(POLICY / "policy-config.json"),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "[advisory]" in output and "policy-exemptions" in output
    assert (
        "DaemonSet openebs/zfs-localpv-node is exempt from policy 'no-privileged-workloads'"
        in output
    )
    assert blocking_rules(output) == set()


def test_project_without_the_exemption_is_blocked(cli: dict[str, str], tmp_path: Path) -> None:
    result = preview(cli, tmp_path, fixture("project_stack.yaml"))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert blocking_rules(output) == {"no-privileged-workloads"}


def test_other_teams_setup_fails(cli: dict[str, str], tmp_path: Path) -> None:
    result = preview(cli, tmp_path, fixture("seed_demo.yaml"))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert {
        "no-privilege-escalation",
        "no-service-account-token",
        "pinned-images",
        "no-inline-credentials",
        "runner-namespace-pod-security",
    } <= blocking_rules(output)
    assert "Fix: set spec.automountServiceAccountToken: false" in output


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
def test_each_violation_fails_with_its_rule_named(
    cli: dict[str, str], tmp_path: Path, change: dict[str, Any], rule: str
) -> None:
    result = preview(cli, tmp_path, as_items(team_stack(**change)))
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert rule in blocking_rules(output), output


def test_compliant_team_setup_passes(cli: dict[str, str], tmp_path: Path) -> None:
    result = preview(cli, tmp_path, as_items(team_stack()))
    assert result.returncode == 0, result.stdout + result.stderr


def test_remediate_level_fixes_escalation(cli: dict[str, str], tmp_path: Path) -> None:
    """At the remediate level the engine takes the pack's fix and the violation is gone."""
    config = tmp_path / "remediate.json"
    config.write_text(json.dumps({"no-privilege-escalation": {"enforcementLevel": "remediate"}}))
    template = privileged_job()
    template["spec"]["containers"][0]["securityContext"] = {"capabilities": {"drop": ["ALL"]}}
    result = preview(
        cli, tmp_path, as_items(team_stack(template=template)), "--policy-pack-config", str(config)
    )
    output = result.stdout + result.stderr
    assert "no-privilege-escalation" not in blocking_rules(output), output
    assert result.returncode == 0, output
