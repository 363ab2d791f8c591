"""``scaleSets.<name>.containerMode``: hook 0.7 (``kubernetes``) or hook 0.8 (``kubernetes-novolume``).

Hook 0.8 (actions/runner-container-hooks v0.8.1, ``packages/k8s/src/k8s/index.ts``
``createJobPod``) sets no node on the job pod and has no shared work volume, so a novolume
scale set's runners are not pinned and the chart gets no work claim; its ``fs-init`` init
container cannot pass Pod Security ``restricted``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from components import constants as c
from components.config import ConfigError, load_stack_file, validate_config
from components.hook_template import CacheMount, hook_template
from policy.arc_policy.hook_merge import HOOK_0_8, RunnerContext, WorkflowContainer
from policy.arc_policy.testing import declared, run_pack
from tests.harness import ROOT, deploy, runner_env, scale_set_chart_values

DATA = Path(__file__).resolve().parent / "data"
K8S_VERSION = "1.34.0"


def _values(**overrides: Any) -> dict[str, Any]:
    return scale_set_chart_values(
        **{"name": "nv", "work_volume_storage_class": "local-path", **overrides}
    )


def test_novolume_values_use_hook_08_unpinned_and_without_work_claim() -> None:
    values = _values(container_mode=c.CONTAINER_MODE_NOVOLUME)
    assert values["containerMode"] == {"type": c.CONTAINER_MODE_NOVOLUME}
    spec = values["template"]["spec"]
    assert "nodeSelector" not in spec
    assert "affinity" not in spec and "nodeName" not in spec
    env = runner_env(values)
    assert env["ACTIONS_RUNNER_CONTAINER_HOOKS"] == c.NOVOLUME_HOOK_ENTRYPOINT
    assert env["ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE"] == c.HOOK_TEMPLATE_FILE
    assert [v["name"] for v in spec["volumes"]] == [c.HOOK_TEMPLATE_VOLUME]


def test_kubernetes_values_pin_runners_and_claim_a_work_volume() -> None:
    values = _values()
    assert values["containerMode"]["type"] == c.CONTAINER_MODE_KUBERNETES
    assert values["containerMode"]["kubernetesModeWorkVolumeClaim"]["storageClassName"] == (
        "local-path"
    )
    assert values["template"]["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "node-a"}
    assert runner_env(values)["ACTIONS_RUNNER_CONTAINER_HOOKS"] == c.HOOK_ENTRYPOINT


def test_novolume_values_refuse_the_hook_07_scheduler_switch() -> None:
    with pytest.raises(ValueError, match=r"hook 0\.7"):
        _values(container_mode=c.CONTAINER_MODE_NOVOLUME, use_kube_scheduler=True)


# --- config: scaleSets.<name>.containerMode ------------------------------------------------

BASELINE = {"level": "baseline", "reason": "hook 0.8's fs-init init container"}


@pytest.fixture
def raw() -> dict[str, Any]:
    return load_stack_file(DATA / "minimal_stack.yaml")


def _problems(raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        validate_config(raw)
    return {p.path: f"{p.message} (e.g. {p.example})" for p in info.value.problems}


def _novolume(raw: dict[str, Any], **extra: Any) -> dict[str, Any]:
    raw["scaleSets"]["linux"].update(containerMode=c.CONTAINER_MODE_NOVOLUME, **extra)
    return raw


def test_container_mode_defaults_to_kubernetes(raw: dict[str, Any]) -> None:
    config = validate_config(raw)
    assert config.scale_sets["linux"].container_mode == c.CONTAINER_MODE_KUBERNETES


def test_novolume_under_baseline_is_accepted(raw: dict[str, Any]) -> None:
    for scale_set in raw["scaleSets"].values():
        scale_set["podSecurity"] = BASELINE
    config = validate_config(_novolume(raw))
    assert config.scale_sets["linux"].container_mode == c.CONTAINER_MODE_NOVOLUME


def test_novolume_in_a_restricted_namespace_is_refused_naming_fs_init_and_the_fix(
    raw: dict[str, Any],
) -> None:
    problems = _problems(_novolume(raw))
    message = problems["scaleSets.linux.containerMode"]
    assert c.NOVOLUME_HOOK_INIT_CONTAINER in message and "restricted" in message
    assert "scaleSets.linux.podSecurity: {level: baseline" in message
    assert "containerMode: kubernetes" in message


def test_one_baseline_scale_set_makes_its_namespace_baseline(raw: dict[str, Any]) -> None:
    # The builder scale set shares the namespace and keeps the default (restricted).
    config = validate_config(_novolume(raw, podSecurity=BASELINE))
    assert config.scale_sets["gcc12-builder"].pod_security.level == "restricted"


def test_a_baseline_scale_set_in_another_namespace_does_not_count(raw: dict[str, Any]) -> None:
    raw["caches"]["other"] = {"node": "node-a", "size": "1Gi", "mountPath": "/OTHER",
                              "namespace": "other-runners"}  # fmt: skip
    raw["scaleSets"]["other"] = {"namespace": "other-runners", "caches": ["other"],
                                 "podSecurity": BASELINE}  # fmt: skip
    assert "scaleSets.linux.containerMode" in _problems(_novolume(raw))


def test_novolume_refuses_the_hook_07_settings(raw: dict[str, Any]) -> None:
    for scale_set in raw["scaleSets"].values():
        scale_set["podSecurity"] = BASELINE
    problems = _problems(_novolume(raw, useKubeScheduler=True, workVolume={"size": "5Gi"}))
    assert "hook 0.7 setting" in problems["scaleSets.linux.useKubeScheduler"]
    assert "no work volume" in problems["scaleSets.linux.workVolume"]
    assert "scaleSets.linux.containerMode" not in problems


def test_unknown_container_mode_is_refused(raw: dict[str, Any]) -> None:
    raw["scaleSets"]["linux"]["containerMode"] = "dind"
    message = _problems(raw)["scaleSets.linux.containerMode"]
    assert c.CONTAINER_MODE_KUBERNETES in message and c.CONTAINER_MODE_NOVOLUME in message


# --- hook 0.8's pods with the program's template (the policy pack's model) -----------------


def _template() -> dict[str, Any]:
    clone = CacheMount("gcc12", "gcc12-gen-3", "200Gi", "arc-zfs-node-a", "/CONAN_HOME")
    return hook_template("nv", [clone], services=["redis"])


def test_hook_08_job_pod_gets_the_clones_keeps_fs_init_and_is_unpinned() -> None:
    runner = RunnerContext(pod_name="nv-abcde-runner-x7k2p", runner_image=c.RUNNER_IMAGE)
    pod = HOOK_0_8.job_pod(_template(), WorkflowContainer(), None, runner)
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    spec = pod["spec"]
    assert "nodeName" not in spec and "affinity" not in spec
    # The template sets no initContainers: upstream's fs-init (workspace set-up) stays.
    (init,) = spec["initContainers"]
    assert (init["name"], init["image"]) == (c.NOVOLUME_HOOK_INIT_CONTAINER, c.RUNNER_IMAGE)
    # The template's securityContext replaces the hook's {fsGroup: 1001}, as with hook 0.7.
    assert spec["securityContext"]["fsGroup"] == c.RUNNER_GID
    assert spec["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    volumes = [v["name"] for v in spec["volumes"]]
    assert volumes == ["externals", "github", "work", "cache-gcc12"]
    clone = spec["volumes"][-1]["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert clone["dataSource"]["name"] == "gcc12-gen-3"
    job = next(ctr for ctr in spec["containers"] if ctr["name"] == "job")
    assert {"name": "cache-gcc12", "mountPath": "/CONAN_HOME"} in job["volumeMounts"]
    assert job["securityContext"]["allowPrivilegeEscalation"] is False


def test_hook_08_step_pod_gets_its_own_clone_and_no_init_container() -> None:
    pod = HOOK_0_8.step_pod(_template(), WorkflowContainer(), RunnerContext(pod_name="nv-x"))
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    spec = pod["spec"]
    assert "initContainers" not in spec and "nodeName" not in spec
    assert spec["volumes"][-1]["name"] == "cache-gcc12"
    assert spec["securityContext"]["runAsUser"] == c.JOB_UID


def test_program_renders_a_novolume_scale_set_unpinned_without_work_claim(
    minimal_raw: dict[str, Any],
) -> None:
    minimal_raw["scaleSets"]["linux"].update(
        containerMode=c.CONTAINER_MODE_NOVOLUME, podSecurity=BASELINE
    )
    deployment = deploy(validate_config(minimal_raw))
    values = deployment.chart("linux")["values"]
    assert values["containerMode"] == {"type": c.CONTAINER_MODE_NOVOLUME}
    assert "nodeSelector" not in values["template"]["spec"]
    assert runner_env(values)["ACTIONS_RUNNER_CONTAINER_HOOKS"] == c.NOVOLUME_HOOK_ENTRYPOINT
    # The other scale set keeps hook 0.7 and its pin.
    builder = deployment.chart("gcc12-builder")["values"]
    assert builder["containerMode"]["type"] == c.CONTAINER_MODE_KUBERNETES
    assert builder["template"]["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "node-a"}


def test_policy_pack_passes_a_novolume_scale_set_in_a_reasoned_baseline_namespace(
    minimal_raw: dict[str, Any],
) -> None:
    """hook-pod-security checks hook 0.8's pods (fs-init included) against baseline, and
    runner-namespace-pod-security wants the namespace's reason in the pack's own config."""
    minimal_raw["scaleSets"]["linux"].update(
        containerMode=c.CONTAINER_MODE_NOVOLUME, podSecurity=BASELINE
    )
    deployment = deploy(validate_config(minimal_raw))
    stack = [declared(r.typ, r.name, r.inputs) for r in deployment.resources]
    pack_config = json.loads((ROOT / "policy" / "policy-config.json").read_text())
    blocking = run_pack(stack, pack_config).blocking
    assert {v.policy for v in blocking} == {"runner-namespace-pod-security"}
    pack_config.setdefault("runner-namespace-pod-security", {})["baselineNamespaces"] = [
        {"namespace": "arc-runners", "reason": BASELINE["reason"]}
    ]
    assert run_pack(stack, pack_config).blocking == []
