"""The pack's model of the scale-set chart renders the runner pod the real chart renders.

``policy/arc_policy/scale_set_chart.py`` is the pack's one model of gha-runner-scale-set 0.14.2
(a Helm release's rendered AutoscalingRunnerSet is not in a preview). Here the real chart, taken
from the actions-runner-controller mirror at tag ``gha-runner-scale-set-0.14.2``, is rendered
with helm's Go library (``scripts/helm_render``, as ``scripts/record_upstream_charts.py`` does for
``tests/data/upstream-charts-0.14.2/``) for values covering every container mode, a GitHub
Enterprise CA, and values that set what the chart would add, and for the values the program
passes for every shipped stack; the model must give the same pod template, field for field.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from policy.arc_policy.scale_set_chart import render_scale_set_values
from scripts import record_upstream_charts as rec

pytestmark = pytest.mark.e2e

RUNNER = {
    "name": "runner",
    "image": "ghcr.io/actions/actions-runner:2.336.0",
    "command": ["/home/runner/run.sh"],
    "securityContext": {"allowPrivilegeEscalation": False},
    "env": [{"name": "FOO", "value": "1"}],
    "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
}
BASE: dict[str, Any] = {
    "githubConfigUrl": "https://github.com/acme",
    "githubConfigSecret": "creds",
    "controllerServiceAccount": {"name": "arc-gha-rs-controller", "namespace": "arc-systems"},
    "template": {
        "metadata": {"labels": {"team": "build"}},
        "spec": {
            "securityContext": {"runAsNonRoot": True},
            "nodeSelector": {"disk": "zfs"},
            "containers": [{"name": "sidecar", "image": "busybox:1.37"}, RUNNER],
            "initContainers": [{"name": "init", "image": "busybox:1.37"}],
            "volumes": [{"name": "scratch", "emptyDir": {}}],
        },
    },
}
TLS = {
    "githubServerTLS": {
        "certificateFrom": {"configMapKeyRef": {"name": "ghes-ca", "key": "ca.crt"}},
        "runnerMountPath": "/usr/local/share/ca-certificates/",
    }
}
WORK_CLAIM = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
MODES: dict[str, dict[str, Any]] = {
    "kubernetes": {"type": "kubernetes", "kubernetesModeWorkVolumeClaim": WORK_CLAIM},
    "kubernetes-novolume": {"type": "kubernetes-novolume"},
    "dind": {"type": "dind"},
    "none": {},
}


def case(mode: str, **extra: Any) -> dict[str, Any]:
    values = copy.deepcopy(BASE)
    if MODES[mode]:
        values["containerMode"] = copy.deepcopy(MODES[mode])
    values.update(copy.deepcopy(extra))
    return values


def runner_with(**fields: Any) -> dict[str, Any]:
    """Values whose runner container also sets ``fields`` (what the chart would add)."""
    values = case("kubernetes", **TLS)
    runner = values["template"]["spec"]["containers"][1]
    for key, items in fields.items():
        runner[key] = [*runner.get(key, []), *items]
    return values


CASES: dict[str, dict[str, Any]] = {
    **{mode: case(mode) for mode in MODES},
    **{f"{mode}-tls": case(mode, **TLS) for mode in MODES},
    "named-scale-set": case("kubernetes", runnerScaleSetName="linux_x64"),
    "own-service-account-and-work-volume": {
        **case("dind"),
        "template": {
            "spec": {
                "serviceAccountName": "ci",
                "restartPolicy": "OnFailure",
                "containers": [RUNNER],
                "volumes": [{"name": "work", "persistentVolumeClaim": {"claimName": "w"}}],
            }
        },
    },
    "runner-sets-what-the-chart-adds": runner_with(
        env=[
            {"name": "ACTIONS_RUNNER_CONTAINER_HOOKS", "value": "/opt/hooks/index.js"},
            {"name": "RUNNER_UPDATE_CA_CERTS", "value": "0"},
        ],
        volumeMounts=[{"name": "work", "mountPath": "/work"}],
    ),
    "chart-defaults": {"githubConfigUrl": "https://github.com/acme", "githubConfigSecret": "c"},
}


@pytest.fixture(scope="module")
def chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The upstream chart directory, from the mirror at the recorded tag."""
    out = tmp_path_factory.mktemp("upstream-chart")
    archive = subprocess.run(
        ["git", "-C", str(rec.MIRROR), "archive", rec.UPSTREAM_TAG, "charts/gha-runner-scale-set"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return out / "charts"


@pytest.fixture(scope="module")
def renderer() -> Path:
    return rec.renderer()


def upstream_template(renderer: Path, chart: Path, values: dict[str, Any]) -> dict[str, Any]:
    """``spec.template`` of the AutoscalingRunnerSet the real chart renders."""
    release = {
        "chart": "gha-runner-scale-set",
        "release": "linux",
        "namespace": "arc-runners",
        "values": {**values, "controllerServiceAccount": BASE["controllerServiceAccount"]},
    }
    objects = rec.render(renderer, chart, release)
    (ars,) = [o["object"] for o in objects if o["kind"] == "AutoscalingRunnerSet"]
    template: dict[str, Any] = ars["spec"]["template"]
    return template


@pytest.mark.parametrize("name", list(CASES))
def test_model_renders_what_the_chart_renders(renderer: Path, chart: Path, name: str) -> None:
    values = CASES[name]
    upstream = upstream_template(renderer, chart, values)
    pod, _, _ = render_scale_set_values(json.loads(json.dumps(values)), "linux")
    assert pod["spec"] == upstream["spec"], yaml.safe_dump(
        {"model": pod["spec"], "chart": upstream["spec"]}
    )
    assert pod["metadata"] == upstream.get("metadata", {})


@pytest.mark.parametrize("stack", rec.STACKS)
def test_model_renders_the_shipped_stacks_runner_pods(
    renderer: Path, chart: Path, stack: str
) -> None:
    """The program's own scale sets (values as it passes them, under the unit tier's mocks)."""
    scale_sets = [r for r in rec.releases(stack) if r["chart"] == "gha-runner-scale-set"]
    assert scale_sets
    for release in scale_sets:
        values = json.loads(json.dumps(release["values"], default=str))
        objects = rec.render(renderer, chart, {**release, "values": values})
        (ars,) = [o["object"] for o in objects if o["kind"] == "AutoscalingRunnerSet"]
        pod, _, _ = render_scale_set_values(values, release["release"])
        assert pod["spec"] == ars["spec"]["template"]["spec"], release["release"]
        assert pod["metadata"] == ars["spec"]["template"].get("metadata", {})
