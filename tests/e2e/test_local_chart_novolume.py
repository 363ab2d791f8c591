"""The local scale-set chart renders kubernetes-novolume as upstream 0.14.2 does, object by object.

No shipped stack has a kubernetes-novolume scale set, so the recorded table of the shipped
stacks (tests/data/upstream-charts-0.14.2/<stack>.json) does not cover that mode. The program is
run under the unit tier's Pulumi mocks for tests/data/minimal_stack.yaml with its ``linux`` scale
set in kubernetes-novolume (namespace at ``baseline``), with and without a GHES CA bundle
(scripts/record_chart_cases.py ``novolume_release``); what the upstream chart renders for those
values is recorded in tests/data/upstream-charts-0.14.2/cases.json. charts/local/
gha-runner-scale-set, rendered by the same renderer (helm's Go library, as
tests/e2e/test_local_charts.py), must give every object the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components import constants as c
from scripts import record_chart_cases as cases
from scripts import record_upstream_charts as rec

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def renderer() -> Path:
    return rec.renderer()


@pytest.fixture(scope="module")
def record() -> dict[str, Any]:
    return cases.load()


@pytest.mark.parametrize("variant", list(cases.NOVOLUME_VARIANTS))
def test_local_chart_renders_novolume_as_upstream(
    renderer: Path, record: dict[str, Any], variant: str
) -> None:
    entry = record["novolume"][variant]
    release = entry["release"]
    assert release["values"]["containerMode"] == {"type": c.CONTAINER_MODE_NOVOLUME}
    identity = {k: release[k] for k in ("chart", "release", "namespace")}
    upstream = {"releases": [{**identity, "objects": entry["objects"]}]}
    local_objects = rec.render(renderer, rec.ROOT / "charts" / "local", release)
    local = {"releases": [{**identity, "objects": local_objects}]}
    assert rec.differences(upstream, local) == []
    objects = {(o["kind"], o["name"]): o["object"] for o in entry["objects"]}
    ars = objects[("AutoscalingRunnerSet", "linux")]
    (runner,) = ars["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in runner["env"]}
    assert env["ACTIONS_RUNNER_CONTAINER_HOOKS"] == c.NOVOLUME_HOOK_ENTRYPOINT
    assert env["ACTIONS_RUNNER_IMAGE"] == c.RUNNER_IMAGE
    assert "work" not in {v["name"] for v in ars["spec"]["template"]["spec"]["volumes"]}
    role = objects[("Role", "linux-gha-rs-kube-mode")]
    assert "batch" not in {g for rule in role["rules"] for g in rule["apiGroups"]}
