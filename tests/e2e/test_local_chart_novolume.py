"""The local scale-set chart renders kubernetes-novolume as upstream 0.14.2 does, object by object.

No shipped stack has a kubernetes-novolume scale set, so the recorded table
(tests/data/upstream-charts-0.14.2/) does not cover that mode. Here the program is run under
the unit tier's Pulumi mocks for tests/data/minimal_stack.yaml with its ``linux`` scale set in
kubernetes-novolume (namespace at ``baseline``), with and without a GHES CA bundle; the values
it gives the scale-set chart are rendered by the upstream chart (extracted from the
actions-runner-controller mirror at tag gha-runner-scale-set-0.14.2) and by
charts/local/gha-runner-scale-set with the same renderer as tests/e2e/test_local_charts.py,
and every object must be the same.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from components import constants as c
from components.config import SecretValue, load_stack_file, validate_config
from scripts import record_upstream_charts as rec
from tests.harness import DATA, deploy

pytestmark = pytest.mark.e2e

CA_BUNDLE = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.fixture(scope="module")
def renderer() -> Path:
    return rec.renderer()


@pytest.fixture(scope="module")
def upstream_charts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """charts/ of the upstream repository at the recorded tag (as its README's commands do)."""
    out = tmp_path_factory.mktemp("upstream-charts")
    archive = subprocess.run(
        ["git", "-C", str(rec.MIRROR), "archive", rec.UPSTREAM_TAG, "charts/gha-runner-scale-set"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(out, filter="data")
    return out / "charts"


def novolume_release(ca_bundle: bool) -> dict[str, Any]:
    """The scale-set chart release the program declares for a novolume ``linux`` scale set."""
    raw = load_stack_file(DATA / "minimal_stack.yaml")
    raw["github"]["credentials"]["token"] = SecretValue("ghp_unit_test_token_value")
    raw["scaleSets"]["linux"]["containerMode"] = c.CONTAINER_MODE_NOVOLUME
    raw["scaleSets"]["linux"]["podSecurity"] = {"level": "baseline", "reason": "hook 0.8"}
    if ca_bundle:
        raw["github"]["caBundle"] = CA_BUNDLE
    inputs = deploy(validate_config(raw)).chart("linux")
    return {
        "chart": "gha-runner-scale-set",
        "release": inputs["name"],
        "namespace": inputs["namespace"],
        "values": inputs["values"],
    }


@pytest.mark.parametrize("ca_bundle", [False, True], ids=["plain", "ghes-ca"])
def test_local_chart_renders_novolume_as_upstream(
    renderer: Path, upstream_charts: Path, ca_bundle: bool
) -> None:
    release = novolume_release(ca_bundle)
    assert release["values"]["containerMode"] == {"type": c.CONTAINER_MODE_NOVOLUME}
    tables = [
        {
            "releases": [
                {
                    **{k: release[k] for k in ("chart", "release", "namespace")},
                    "objects": rec.render(renderer, charts, release),
                }
            ]
        }
        for charts in (upstream_charts, rec.ROOT / "charts" / "local")
    ]
    assert rec.differences(*tables) == []
    objects = {(o["kind"], o["name"]): o["object"] for o in tables[0]["releases"][0]["objects"]}
    ars = objects[("AutoscalingRunnerSet", "linux")]
    (runner,) = ars["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in runner["env"]}
    assert env["ACTIONS_RUNNER_CONTAINER_HOOKS"] == c.NOVOLUME_HOOK_ENTRYPOINT
    assert env["ACTIONS_RUNNER_IMAGE"] == c.RUNNER_IMAGE
    assert "work" not in {v["name"] for v in ars["spec"]["template"]["spec"]["volumes"]}
    role = objects[("Role", "linux-gha-rs-kube-mode")]
    assert "batch" not in {g for rule in role["rules"] for g in rule["apiGroups"]}
