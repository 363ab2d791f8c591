"""Record what upstream gha-runner-scale-set 0.14.2 renders for values no shipped stack has.

    .venv/bin/python -m scripts.record_chart_cases [--charts DIR]

writes tests/data/upstream-charts-0.14.2/cases.json with two tables, each entry holding the
values it was rendered from, so a test finds a stale record by comparing them:

``runner-pod``
    for every entry of :data:`RUNNER_POD_CASES` (every container mode, with and without a
    GitHub Enterprise CA, values setting what the chart would add), the ``spec.template`` of
    the AutoscalingRunnerSet the chart renders: the oracle of the policy pack's model of the
    chart (policy/arc_policy/scale_set_chart.py, tests/test_policy_chart_model.py);
``novolume``
    every object the chart renders for the program's kubernetes-novolume scale set
    (:func:`novolume_release`, with and without a GHES CA): the oracle of the local stand-in
    chart in that mode (tests/e2e/test_local_chart_novolume.py).

``DIR`` is the upstream charts directory extracted as tests/data/upstream-charts-0.14.2/
README.md says (the same as scripts/record_upstream_charts.py); the renderer is that
script's (helm's Go library). Tests read only the record: the upstream repository is not
needed to run them.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
from pathlib import Path
from typing import Any

from components import constants as c
from components.config import SecretValue, load_stack_file, validate_config
from scripts import record_upstream_charts as rec

__all__ = [
    "CASES_FILE",
    "NOVOLUME_VARIANTS",
    "RUNNER_POD_CASES",
    "load",
    "main",
    "novolume_release",
]

CASES_FILE = rec.TABLE_DIR / "cases.json"
RERECORD = (
    "re-record it with `.venv/bin/python -m scripts.record_chart_cases --charts DIR` "
    "(DIR as tests/data/upstream-charts-0.14.2/README.md says)"
)

_RUNNER = {
    "name": "runner",
    "image": "ghcr.io/actions/actions-runner:2.336.0",
    "command": ["/home/runner/run.sh"],
    "securityContext": {"allowPrivilegeEscalation": False},
    "env": [{"name": "FOO", "value": "1"}],
    "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
}
_CONTROLLER_SA = {"name": "arc-gha-rs-controller", "namespace": "arc-systems"}
_BASE: dict[str, Any] = {
    "githubConfigUrl": "https://github.com/acme",
    "githubConfigSecret": "creds",
    "controllerServiceAccount": _CONTROLLER_SA,
    "template": {
        "metadata": {"labels": {"team": "build"}},
        "spec": {
            "securityContext": {"runAsNonRoot": True},
            "nodeSelector": {"disk": "zfs"},
            "containers": [{"name": "sidecar", "image": "busybox:1.37"}, _RUNNER],
            "initContainers": [{"name": "init", "image": "busybox:1.37"}],
            "volumes": [{"name": "scratch", "emptyDir": {}}],
        },
    },
}
_TLS = {
    "githubServerTLS": {
        "certificateFrom": {"configMapKeyRef": {"name": "ghes-ca", "key": "ca.crt"}},
        "runnerMountPath": "/usr/local/share/ca-certificates/",
    }
}
_WORK_CLAIM = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
_MODES: dict[str, dict[str, Any]] = {
    "kubernetes": {"type": "kubernetes", "kubernetesModeWorkVolumeClaim": _WORK_CLAIM},
    "kubernetes-novolume": {"type": "kubernetes-novolume"},
    "dind": {"type": "dind"},
    "none": {},
}


def _case(mode: str, **extra: Any) -> dict[str, Any]:
    values = copy.deepcopy(_BASE)
    if _MODES[mode]:
        values["containerMode"] = copy.deepcopy(_MODES[mode])
    values.update(copy.deepcopy(extra))
    return values


def _runner_with(**fields: Any) -> dict[str, Any]:
    """Values whose runner container also sets ``fields`` (what the chart would add)."""
    values = _case("kubernetes", **_TLS)
    runner = values["template"]["spec"]["containers"][1]
    for key, items in fields.items():
        runner[key] = [*runner.get(key, []), *items]
    return values


RUNNER_POD_CASES: dict[str, dict[str, Any]] = {
    **{mode: _case(mode) for mode in _MODES},
    **{f"{mode}-tls": _case(mode, **_TLS) for mode in _MODES},
    "named-scale-set": _case("kubernetes", runnerScaleSetName="linux_x64"),
    "own-service-account-and-work-volume": {
        **_case("dind"),
        "template": {
            "spec": {
                "serviceAccountName": "ci",
                "restartPolicy": "OnFailure",
                "containers": [_RUNNER],
                "volumes": [{"name": "work", "persistentVolumeClaim": {"claimName": "w"}}],
            }
        },
    },
    "runner-sets-what-the-chart-adds": _runner_with(
        env=[
            {"name": "ACTIONS_RUNNER_CONTAINER_HOOKS", "value": "/opt/hooks/index.js"},
            {"name": "RUNNER_UPDATE_CA_CERTS", "value": "0"},
        ],
        volumeMounts=[{"name": "work", "mountPath": "/work"}],
    ),
    "chart-defaults": {"githubConfigUrl": "https://github.com/acme", "githubConfigSecret": "c"},
}
"""Scale-set chart values (release ``linux`` in ``arc-runners``) the pack's model is held to."""

NOVOLUME_VARIANTS = {"plain": False, "ghes-ca": True}
"""The novolume releases recorded: without and with a GitHub Enterprise CA bundle."""

_CA_BUNDLE = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def novolume_release(ca_bundle: bool) -> dict[str, Any]:
    """The scale-set chart release the program declares for a novolume ``linux`` scale set.

    tests/data/minimal_stack.yaml with its ``linux`` scale set in kubernetes-novolume (its
    namespace at ``baseline``), run under the unit tier's Pulumi mocks.
    """
    # The unit tier's harness, imported as rec.releases does (tests/ stay outside mypy's files).
    harness = importlib.import_module("tests.harness")
    raw = load_stack_file(harness.DATA / "minimal_stack.yaml")
    raw["github"]["credentials"]["token"] = SecretValue("ghp_unit_test_token_value")
    raw["scaleSets"]["linux"]["containerMode"] = c.CONTAINER_MODE_NOVOLUME
    raw["scaleSets"]["linux"]["podSecurity"] = {"level": "baseline", "reason": "hook 0.8"}
    if ca_bundle:
        raw["github"]["caBundle"] = _CA_BUNDLE
    inputs = harness.deploy(validate_config(raw)).chart("linux")
    return {
        "chart": "gha-runner-scale-set",
        "release": inputs["name"],
        "namespace": inputs["namespace"],
        "values": json.loads(json.dumps(inputs["values"], default=str)),
    }


def _runner_pod_release(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "chart": "gha-runner-scale-set",
        "release": "linux",
        "namespace": "arc-runners",
        "values": {**values, "controllerServiceAccount": _CONTROLLER_SA},
    }


def load() -> dict[str, Any]:
    """The record, checked against the cases defined here (a stale record fails loudly)."""
    record: dict[str, Any] = json.loads(CASES_FILE.read_text())
    want = {name: _runner_pod_release(v)["values"] for name, v in RUNNER_POD_CASES.items()}
    got = {name: entry["release"]["values"] for name, entry in record["runner-pod"].items()}
    if got != json.loads(json.dumps(want)):
        raise AssertionError(f"{CASES_FILE.name}: runner-pod cases changed; {RERECORD}")
    for variant, ca_bundle in NOVOLUME_VARIANTS.items():
        if record["novolume"][variant]["release"] != novolume_release(ca_bundle):
            raise AssertionError(
                f"{CASES_FILE.name}: the program's novolume release ({variant}) changed; {RERECORD}"
            )
    return record


def main(argv: list[str] | None = None) -> int:
    """Render every case with the upstream charts in ``--charts`` and write the record."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--charts", type=Path, default=Path("/tmp/upstream-charts/charts"))
    args = parser.parse_args(argv)
    binary = rec.renderer()
    runner_pod = {}
    for name, values in RUNNER_POD_CASES.items():
        release = json.loads(json.dumps(_runner_pod_release(values)))
        objects = rec.render(binary, args.charts, release)
        (ars,) = [o["object"] for o in objects if o["kind"] == "AutoscalingRunnerSet"]
        runner_pod[name] = {"release": release, "template": ars["spec"]["template"]}
    novolume = {}
    for variant, ca_bundle in NOVOLUME_VARIANTS.items():
        release = novolume_release(ca_bundle)
        novolume[variant] = {
            "release": release,
            "objects": rec.render(binary, args.charts, release),
        }
    record = {"tag": rec.UPSTREAM_TAG, "runner-pod": runner_pod, "novolume": novolume}
    CASES_FILE.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"wrote {CASES_FILE.relative_to(rec.ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
