"""Oracle: the pack's job-pod verdict against Pod Security ``restricted`` in a real API server.

Many hook-template variants are generated (hypothesis, derandomized so the tier is
reproducible); each is merged into the hook 0.7 base job pod exactly as the hook merges it,
and the effective pod is sent to the local kube-apiserver with server-side dry-run into a
namespace labelled ``pod-security.kubernetes.io/enforce: restricted``. PodSecurity admission's
verdict is compared with the pack's:

* the rules that mirror ``restricted`` must agree on every variant;
* the whole pack, with its default config, may only be *stricter*, and only through its two
  deliberate extra rules: ``no-service-account-token`` (the hook's pod would get the
  namespace's token) and the ``allowedUids`` list of ``run-as-non-root`` (a job container with
  another uid cannot write the runner's files).

The same edits are then merged into every pod the hooks create (hook 0.7's job pod and its
container-step Job's pod, hook 0.8's job pod with its ``fs-init`` and its step pod): the
verdict of ``hook-pod-security`` (the ``restricted`` rules with Pod Security's allowances) must
equal the API server's on each.

The summary is printed (``pytest -s``) and written to ``policy-oracle.json`` in the test's
temporary directory.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lightkube import ApiError

from policy.arc_policy.config import Settings
from policy.arc_policy.hook_merge import (
    HOOK_VERSIONS,
    HookVersion,
    RunnerContext,
    WorkflowContainer,
    effective_job_pod,
)
from policy.arc_policy.model import PodKind, PodTarget, ResourceRef
from policy.arc_policy.rules.levels import JOB_POD_RULES, level_findings

pytestmark = pytest.mark.e2e

NAMESPACE = "policy-oracle"
#: Rules stricter than ``restricted`` on purpose (see the module docstring).
STRICTER = {"no-service-account-token"}
#: Settings under which the pack's rules mean exactly ``restricted``.
RESTRICTED_EQUIVALENT = Settings(allowed_uids=frozenset())
EXAMPLES = 300
DATA = Path(__file__).resolve().parents[1] / "data" / "policy"

#: The project's compliant template shape; variants start from it and mutate it.
BASE: dict[str, Any] = {
    "metadata": {"labels": {"oracle": "true"}},
    "spec": {
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1001,
            "fsGroup": 123,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "$job",
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
    },
}
COMPLIANT_CONTEXT = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
DELETE: Any = object()

#: (path, value) edits; a path is a dotted path from the template root (0 = list index).
MUTATIONS: list[tuple[str, Any]] = [
    ("spec.securityContext.runAsNonRoot", False),
    ("spec.securityContext.runAsNonRoot", DELETE),
    ("spec.securityContext.runAsUser", 0),
    ("spec.securityContext.runAsUser", 1000),
    ("spec.securityContext.runAsUser", DELETE),
    ("spec.securityContext.seccompProfile", {"type": "Unconfined"}),
    ("spec.securityContext.seccompProfile", {"type": "Localhost", "localhostProfile": "ci.json"}),
    ("spec.securityContext.seccompProfile", DELETE),
    ("spec.securityContext.sysctls", [{"name": "net.ipv4.ping_group_range", "value": "0 1"}]),
    ("spec.securityContext.sysctls", [{"name": "kernel.msgmax", "value": "65536"}]),
    ("spec.securityContext.seLinuxOptions", {"type": "container_t", "level": "s0:c1,c2"}),
    ("spec.securityContext.seLinuxOptions", {"type": "spc_t"}),
    ("spec.securityContext.seLinuxOptions", {"user": "system_u"}),
    ("spec.securityContext.appArmorProfile", {"type": "Unconfined"}),
    ("spec.securityContext.appArmorProfile", {"type": "RuntimeDefault"}),
    ("spec.securityContext", DELETE),
    ("spec.containers.0.securityContext.seccompProfile", {"type": "RuntimeDefault"}),
    ("spec.containers.0.securityContext.seccompProfile", {"type": "Unconfined"}),
    ("spec.containers.0.securityContext.allowPrivilegeEscalation", True),
    ("spec.containers.0.securityContext.allowPrivilegeEscalation", DELETE),
    ("spec.containers.0.securityContext.privileged", True),
    ("spec.containers.0.securityContext.capabilities.drop", DELETE),
    ("spec.containers.0.securityContext.capabilities.drop", ["NET_RAW"]),
    ("spec.containers.0.securityContext.capabilities.add", ["NET_BIND_SERVICE"]),
    ("spec.containers.0.securityContext.capabilities.add", ["SYS_ADMIN"]),
    ("spec.containers.0.securityContext.capabilities.add", ["CHOWN"]),
    ("spec.containers.0.securityContext.runAsNonRoot", False),
    ("spec.containers.0.securityContext.runAsNonRoot", True),
    ("spec.containers.0.securityContext.runAsUser", 0),
    ("spec.containers.0.securityContext.runAsUser", 1000),
    ("spec.containers.0.securityContext.procMount", "Unmasked"),  # valid with hostUsers: false
    ("spec.hostUsers", False),
    ("spec.containers.0.securityContext", {"privileged": True, "capabilities": {"drop": ["ALL"]}}),
    ("spec.containers.0.securityContext.appArmorProfile", {"type": "Unconfined"}),
    ("spec.containers.0.securityContext", DELETE),
    ("spec.containers.0.ports", [{"containerPort": 8080, "hostPort": 8080}]),
    ("spec.containers.0", DELETE),
    ("spec.containers.1", {"name": "$redis", "securityContext": COMPLIANT_CONTEXT}),
    ("spec.containers.1", {"name": "$redis"}),
    (
        "spec.containers.1",
        {"name": "sidecar", "image": "busybox:1.37", "securityContext": COMPLIANT_CONTEXT},
    ),
    ("spec.containers.1", {"name": "sidecar", "image": "busybox:1.37"}),
    (
        "spec.initContainers",
        [{"name": "init", "image": "busybox:1.37", "securityContext": COMPLIANT_CONTEXT}],
    ),
    ("spec.initContainers", [{"name": "init", "image": "busybox:1.37"}]),
    ("spec.hostNetwork", True),
    ("spec.hostPID", True),
    ("spec.hostIPC", True),
    ("spec.automountServiceAccountToken", True),
    ("spec.automountServiceAccountToken", DELETE),
    ("spec.volumes", [{"name": "scratch", "emptyDir": {}}]),
    ("spec.volumes", [{"name": "host", "hostPath": {"path": "/var/run"}}]),
    ("spec.volumes", [{"name": "share", "nfs": {"server": "nas.example.com", "path": "/ci"}}]),
    ("spec.volumes", [{"name": "creds", "secret": {"secretName": "ci"}}]),
    (
        "spec.volumes",
        [{"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}],
    ),
    (
        "spec.volumes",
        [
            {
                "name": "cache",
                "ephemeral": {
                    "volumeClaimTemplate": {
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "1Gi"}},
                        }
                    }
                },
            }
        ],
    ),
    ("metadata.annotations", {"container.apparmor.security.beta.kubernetes.io/job": "unconfined"}),
    (
        "metadata.annotations",
        {"container.apparmor.security.beta.kubernetes.io/job": "runtime/default"},
    ),
]


def mutate(template: dict[str, Any], path: str, value: Any) -> None:
    """Apply one edit in place (missing mappings are created, list indexes may append)."""
    node: Any = template
    keys = path.split(".")
    for key in keys[:-1]:
        if isinstance(node, list):
            if int(key) >= len(node):
                return  # the container this edit targets was removed by an earlier edit
            node = node[int(key)]
        else:
            node = node.setdefault(key, {})
            if not isinstance(node, dict | list):
                return
    last = keys[-1]
    if isinstance(node, list):
        index = int(last)
        if value is DELETE:
            if index < len(node):
                del node[index]
        elif index < len(node):
            node[index] = json.loads(json.dumps(value))
        else:
            node.append(json.loads(json.dumps(value)))
    elif value is DELETE:
        node.pop(last, None)
    else:
        node[last] = json.loads(json.dumps(value))


@st.composite
def templates(draw: st.DrawFn) -> dict[str, Any]:
    """The compliant base template with zero to three edits from :data:`MUTATIONS`."""
    template = json.loads(json.dumps(BASE))
    for path, value in draw(st.lists(st.sampled_from(MUTATIONS), max_size=3)):
        mutate(template, path, value)
    return template


@dataclass
class Tally:
    """Agreement counts, kept across hypothesis examples."""

    counts: Counter[str]
    disagreements: list[dict[str, Any]]


@pytest.fixture(scope="module")
def tally(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tally]:
    result = Tally(Counter(), [])
    yield result
    summary = {"counts": dict(result.counts), "disagreements": result.disagreements}
    path = tmp_path_factory.mktemp("oracle") / "policy-oracle.json"
    path.write_text(json.dumps(summary, indent=2))
    print(f"\npolicy oracle: {json.dumps(summary['counts'])} (details: {path})")


@pytest.fixture(scope="module")
def kube(local_cluster: Any) -> Any:
    client = local_cluster.kube()
    client.ensure(
        "Namespace",
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": NAMESPACE,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            },
        },
    )
    client.ensure(
        "ServiceAccount",
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": NAMESPACE},
        },
    )
    return client


def server_verdict(kube: Any, pod: dict[str, Any]) -> tuple[str, str]:
    """``(verdict, message)``: ``admitted``, ``rejected`` (PodSecurity) or ``invalid``."""
    body = {**pod, "metadata": {**pod["metadata"], "namespace": NAMESPACE}}
    try:
        kube.create("Pod", body, dry_run=True)
    except ApiError as exc:
        message = str(exc.status.message)
        if exc.status.code == 403 and "PodSecurity" in message:
            return "rejected", message
        return "invalid", message
    return "admitted", ""


def pack_findings(pod: dict[str, Any], settings: Settings) -> dict[str, list[str]]:
    """Findings of every job-pod rule on the effective pod, by rule name."""
    target = PodTarget(
        kind=PodKind.JOB,
        resource=ResourceRef("kubernetes:core/v1:ConfigMap", "ConfigMap", NAMESPACE, "oracle"),
        pod=pod,
        prefix="data.content: ",
        declared={"job": "$job", "redis": "$redis"},
    )
    found = {
        rule.name: [f.message() for f in rule.check(target, settings)] for rule in JOB_POD_RULES
    }
    return {name: messages for name, messages in found.items() if messages}


def compare(kube: Any, tally: Tally, template: dict[str, Any]) -> None:
    """Send the merged pod to the API server and compare verdicts; record the outcome."""
    pod = effective_job_pod(template, runner_pod_name="oracle-runner")
    verdict, message = server_verdict(kube, pod)
    if verdict == "invalid":
        tally.counts["invalid pod (API validation, not compared)"] += 1
        return
    mirrored = {
        k: v for k, v in pack_findings(pod, RESTRICTED_EQUIVALENT).items() if k not in STRICTER
    }
    full = pack_findings(pod, Settings())
    server_rejects = verdict == "rejected"
    tally.counts[f"server {verdict}"] += 1
    agree = bool(mirrored) == server_rejects
    tally.counts["restricted rules agree" if agree else "restricted rules DISAGREE"] += 1
    if bool(full) != server_rejects:
        tally.counts["pack stricter (deliberate)"] += 1
    if not agree:
        tally.disagreements.append({"template": template, "server": message, "pack": mirrored})
    assert agree, (
        f"pack {'rejects' if mirrored else 'admits'} but the API server {verdict}:\n"
        f"server: {message}\npack: {json.dumps(mirrored, indent=1)}\n"
        f"template: {json.dumps(template)}"
    )
    # The whole pack is never more permissive, and stricter only through its extra rules.
    assert not (server_rejects and not full)
    if full and not server_rejects:
        extra = set(full) - set(mirrored)
        assert extra <= STRICTER | {"run-as-non-root"}, full
        assert all("not an allowed uid" in m for m in full.get("run-as-non-root", [])), full


@pytest.mark.parametrize(
    ("path", "value"), MUTATIONS, ids=[f"{p}={v!r}"[:60] for p, v in MUTATIONS]
)
def test_each_single_edit(kube: Any, tally: Tally, path: str, value: Any) -> None:
    template = json.loads(json.dumps(BASE))
    mutate(template, path, value)
    compare(kube, tally, template)


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(template=templates())
def test_pack_agrees_with_restricted(kube: Any, tally: Tally, template: dict[str, Any]) -> None:
    compare(kube, tally, template)


def test_project_template_is_admitted(kube: Any) -> None:
    """The project's own hook template, merged, is admitted by restricted and passes the pack."""
    stack = yaml.safe_load((DATA / "project_stack.yaml").read_text())
    config_map = next(item for item in stack if item["type"] == "kubernetes:core/v1:ConfigMap")
    template = yaml.safe_load(config_map["props"]["data"]["content"])
    pod = effective_job_pod(template, runner_pod_name="dev-linux-x")
    assert server_verdict(kube, pod) == ("admitted", "")
    assert pack_findings(pod, Settings()) == {}


#: A runner as the chart renders it for either hook (fs-init takes ACTIONS_RUNNER_IMAGE).
HOOK_RUNNER = RunnerContext(pod_name="oracle-runner", runner_image="busybox:1.37")
HOOK_PODS = [(hook, kind) for hook in HOOK_VERSIONS for kind in (PodKind.JOB, PodKind.STEP)]


def hook_pod(hook: HookVersion, kind: PodKind, template: dict[str, Any]) -> dict[str, Any]:
    """The pod ``hook`` creates for ``template``, named for the dry run (0.7's step pod is a
    Job's pod template: the Job controller names it)."""
    if kind is PodKind.JOB:
        pod = hook.job_pod(template, WorkflowContainer(), None, HOOK_RUNNER)
    else:
        pod = hook.step_pod(template, WorkflowContainer(), HOOK_RUNNER)
    pod["metadata"].setdefault("name", "oracle-runner-step")
    return pod


@pytest.mark.parametrize(
    "hook_kind", HOOK_PODS, ids=[f"{h.version}-{k.name.lower()}" for h, k in HOOK_PODS]
)
@pytest.mark.parametrize(
    ("path", "value"),
    [("", None), *MUTATIONS],
    ids=["base", *(f"{p}={v!r}"[:60] for p, v in MUTATIONS)],
)
def test_hook_pods_agree_with_restricted(
    kube: Any, tally: Tally, hook_kind: tuple[HookVersion, PodKind], path: str, value: Any
) -> None:
    hook, kind = hook_kind
    template = json.loads(json.dumps(BASE))
    if path:
        mutate(template, path, value)
    pod = hook_pod(hook, kind, template)
    verdict, message = server_verdict(kube, pod)
    tally.counts[f"hook {hook.version} {kind.value}: server {verdict}"] += 1
    if verdict == "invalid":
        return
    target = PodTarget(
        kind=kind,
        resource=ResourceRef("kubernetes:core/v1:ConfigMap", "ConfigMap", NAMESPACE, "oracle"),
        pod=pod,
        prefix="data.content: ",
    )
    found = [f.message() for f in level_findings(target, "restricted", Settings())]
    assert bool(found) == (verdict == "rejected"), (
        f"hook-pod-security {'rejects' if found else 'admits'} but the API server {verdict}:\n"
        f"server: {message}\npack: {json.dumps(found, indent=1)}\npod: {json.dumps(pod)}"
    )


def test_hook_0_8_fs_init_is_rejected_by_restricted(kube: Any) -> None:
    """With the project's compliant template, only hook 0.8's own fs-init is rejected."""
    hook = HOOK_VERSIONS[1]
    verdict, message = server_verdict(kube, hook_pod(hook, PodKind.JOB, BASE))
    assert verdict == "rejected" and "fs-init" in message
    assert server_verdict(kube, hook_pod(hook, PodKind.STEP, BASE)) == ("admitted", "")
