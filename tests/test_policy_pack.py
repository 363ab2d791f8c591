"""The pack as Pulumi loads it: metadata, pins, copied constants, the analyzer's gRPC path."""

from __future__ import annotations

import json
import re
import runpy
import tomllib
from pathlib import Path
from typing import Any

import pulumi_policy
import pytest
import yaml
from google.protobuf import struct_pb2
from pulumi.runtime.proto import analyzer_pb2
from pulumi.runtime.rpc import UNKNOWN
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy
from pulumi_policy.policy import _PolicyAnalyzerServicer

from components import constants
from policy.arc_policy import _constants
from policy.arc_policy.pack import PACK_NAME, all_policies
from policy.arc_policy.values import UNKNOWN_STRING
from tests.test_policy_rules import TEMPLATE, WORKLOAD, template_cm, tweak

ROOT = Path(__file__).resolve().parents[1]
POLICY_DIR = ROOT / "policy"


def test_copied_constants_equal_the_programs() -> None:
    """The pack runs without the repository on sys.path, so it keeps a copy: keep it equal."""
    for name in _constants.__all__:
        assert getattr(_constants, name) == getattr(constants, name), name
    assert UNKNOWN_STRING == UNKNOWN  # and a copy of the engine's unknown-string marker


def test_requirements_pin_what_the_repository_pins() -> None:
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    repo = {re.split("==", p)[0].lower(): p for p in pins}
    lines = (POLICY_DIR / "requirements.txt").read_text().splitlines()
    required = [line for line in lines if line and not line.startswith("#")]
    assert required
    for line in required:
        assert repo[line.split("==")[0].lower()] == line


def test_pulumi_policy_yaml() -> None:
    project = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert project["name"] == PACK_NAME
    assert project["runtime"]["name"] == "python"
    assert (POLICY_DIR / project["runtime"]["options"]["virtualenv"]).resolve() == ROOT / ".venv"


def test_policies_are_named_described_and_leveled() -> None:
    policies = all_policies()
    names = [p.name for p in policies]
    assert len(names) == len(set(names)) == 20
    assert all(re.fullmatch(r"[a-z][a-z-]+", n) for n in names)
    assert all(p.description.endswith(".") and p.config_schema is not None for p in policies)
    advisory = {p.name for p in policies if p.enforcement_level is EnforcementLevel.ADVISORY}
    assert advisory == {"hook-template-directory-mount", "policy-exemptions"}
    assert names[-1] == "policy-exemptions"  # reports after every other policy
    for policy in policies:
        if policy.name != "policy-exemptions":
            assert "exemptions" in policy.config_schema.properties  # type: ignore[union-attr]
    remediable = {
        p.name for p in policies if isinstance(p, ResourceValidationPolicy) and p.has_remediation()
    }
    assert remediable == {"no-privilege-escalation", "drop-all-capabilities"}
    stack = {p.name for p in policies if isinstance(p, StackValidationPolicy)}
    assert stack == {
        "mounted-hook-templates",
        "runner-namespace-pod-security",
        "listener-pod-security",
        "hook-pod-security",
        "policy-exemptions",
    }


def test_pack_config_file_is_valid_for_the_schemas() -> None:
    config = json.loads((POLICY_DIR / "policy-config.json").read_text())
    schemas = {p.name: p.config_schema.properties for p in all_policies()}  # type: ignore[union-attr]
    for policy, values in config.items():
        assert set(values) <= set(schemas[policy]) | {"enforcementLevel"}, policy


# --- the analyzer as the engine drives it (gRPC messages, JSON numbers as floats) ----------------


def servicer() -> Any:
    return _PolicyAnalyzerServicer(
        PACK_NAME,
        "0.1.0",
        all_policies(),
        EnforcementLevel.MANDATORY,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
    )


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(value)
    return message


def configure(analyzer: Any, config: dict[str, dict[str, Any]]) -> None:
    request = analyzer_pb2.ConfigureAnalyzerRequest()
    for policy in all_policies():
        entry = request.policyConfig[policy.name]
        level = config.get(policy.name, {}).get(
            "enforcementLevel", (policy.enforcement_level or EnforcementLevel.MANDATORY).value
        )
        entry.enforcementLevel = {
            "advisory": analyzer_pb2.ADVISORY,
            "mandatory": analyzer_pb2.MANDATORY,
            "remediate": analyzer_pb2.REMEDIATE,
            "disabled": analyzer_pb2.DISABLED,
        }[level]
        properties = {
            k: v for k, v in config.get(policy.name, {}).items() if k != "enforcementLevel"
        }
        entry.properties.update(properties)
    analyzer.Configure(request, None)


def analyze(analyzer: Any, resource: Any) -> list[tuple[str, str]]:
    request = analyzer_pb2.AnalyzeRequest(
        type=resource.type,
        properties=struct(dict(resource.props)),
        urn=resource.urn,
        name=resource.name,
    )
    response = analyzer.Analyze(request, None)
    return [(d.policyName, d.message) for d in response.diagnostics]


def test_analyzer_reports_through_grpc_with_float_numbers() -> None:
    analyzer = servicer()
    configure(analyzer, {})
    root = template_cm(tweak(TEMPLATE, "spec.securityContext.runAsUser", 0))
    diagnostics = analyze(analyzer, root)
    assert [name for name, _ in diagnostics] == ["run-as-non-root"]
    assert "runAsUser: 0 runs as root" in diagnostics[0][1]
    assert analyze(analyzer, template_cm(TEMPLATE)) == []


def test_analyzer_config_and_remediation_through_grpc() -> None:
    analyzer = servicer()
    configure(
        analyzer,
        {
            "no-privileged-workloads": {
                "exemptions": [{"resource": "DaemonSet/openebs/*", "reason": "CSI"}]
            },
            "no-privilege-escalation": {"enforcementLevel": "remediate"},
            "run-as-non-root": {"allowedUids": [1001, 1000]},
        },
    )
    assert analyze(analyzer, WORKLOAD) == []
    uid_1000 = template_cm(tweak(TEMPLATE, "spec.securityContext.runAsUser", 1000))
    assert analyze(analyzer, uid_1000) == []
    stack = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(), None)
    assert [d.policyName for d in stack.diagnostics] == ["policy-exemptions"]
    assert stack.diagnostics[0].enforcementLevel == analyzer_pb2.ADVISORY
    bare = template_cm({"spec": {}})
    response = analyzer.Remediate(
        analyzer_pb2.AnalyzeRequest(
            type=bare.type, properties=struct(dict(bare.props)), urn=bare.urn, name=bare.name
        ),
        None,
    )
    (remediation,) = response.remediations
    assert remediation.policyName == "no-privilege-escalation"
    content = yaml.safe_load(dict(remediation.properties)["data"]["content"])
    assert content["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] is False


def test_entry_point_builds_the_pack(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run policy/__main__.py as Pulumi does (policy/ on sys.path), with the server stubbed."""
    built: dict[str, Any] = {}
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kwargs: built.update(kwargs))
    monkeypatch.syspath_prepend(str(POLICY_DIR))
    runpy.run_path(str(POLICY_DIR / "__main__.py"), run_name="__main__")
    assert built["name"] == PACK_NAME and len(built["policies"]) == 20
