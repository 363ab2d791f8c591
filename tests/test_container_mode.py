"""``scaleSets.<name>.containerMode``: hook 0.7 (``kubernetes``) or hook 0.8 (``kubernetes-novolume``).

Hook 0.8 (actions/runner-container-hooks v0.8.1, ``packages/k8s/src/k8s/index.ts``
``createJobPod``) sets no node on the job pod and has no shared work volume, so a novolume
scale set's runners are not pinned and the chart gets no work claim; its ``fs-init`` init
container cannot pass Pod Security ``restricted``.
"""

from __future__ import annotations

from typing import Any

import pytest

from components import constants as c
from components.runner_scale_set import scale_set_values


def _values(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "name": "nv",
        "github_config_url": "https://github.com/acme",
        "runner_group": "default",
        "min_runners": 0,
        "max_runners": 2,
        "runner_image": c.RUNNER_IMAGE,
        "node": "node-a",
        "controller_namespace": "arc-systems",
        "controller_service_account": "arc-gha-rs-controller",
        "work_volume_size": "10Gi",
        "work_volume_storage_class": "local-path",
        **overrides,
    }
    return scale_set_values(**args)


def _runner_env(values: dict[str, Any]) -> dict[str, str]:
    (runner,) = values["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in runner["env"]}


def test_novolume_values_use_hook_08_unpinned_and_without_work_claim() -> None:
    values = _values(container_mode=c.CONTAINER_MODE_NOVOLUME)
    assert values["containerMode"] == {"type": c.CONTAINER_MODE_NOVOLUME}
    spec = values["template"]["spec"]
    assert "nodeSelector" not in spec
    assert "affinity" not in spec and "nodeName" not in spec
    env = _runner_env(values)
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
    assert _runner_env(values)["ACTIONS_RUNNER_CONTAINER_HOOKS"] == c.HOOK_ENTRYPOINT


def test_novolume_values_refuse_the_hook_07_scheduler_switch() -> None:
    with pytest.raises(ValueError, match=r"hook 0\.7"):
        _values(container_mode=c.CONTAINER_MODE_NOVOLUME, use_kube_scheduler=True)
