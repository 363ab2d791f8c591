"""The pack's model of the scale-set chart renders the runner pod the real chart renders.

``policy/arc_policy/scale_set_chart.py`` is the pack's one model of gha-runner-scale-set 0.14.2
(a Helm release's rendered AutoscalingRunnerSet is not in a preview). Its oracle is what the
real chart renders, recorded from the upstream chart with helm's Go library:
``tests/data/upstream-charts-0.14.2/cases.json`` (scripts/record_chart_cases.py: every container
mode, a GitHub Enterprise CA, values that set what the chart would add) and ``<stack>.json``
(scripts/record_upstream_charts.py: the program's values for every shipped stack). The model
must give the same pod template, field for field.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from policy.arc_policy.scale_set_chart import render_scale_set_values
from scripts import record_chart_cases as cases
from scripts import record_upstream_charts as rec


@pytest.fixture(scope="module")
def record() -> dict[str, Any]:
    return cases.load()


@pytest.mark.parametrize("name", list(cases.RUNNER_POD_CASES))
def test_model_renders_what_the_chart_renders(record: dict[str, Any], name: str) -> None:
    entry = record["runner-pod"][name]
    upstream = entry["template"]
    pod, _, _ = render_scale_set_values(entry["release"]["values"], entry["release"]["release"])
    assert pod["spec"] == upstream["spec"], yaml.safe_dump(
        {"model": pod["spec"], "chart": upstream["spec"]}
    )
    assert pod["metadata"] == upstream.get("metadata", {})


@pytest.mark.parametrize("stack", rec.STACKS)
def test_model_renders_the_shipped_stacks_runner_pods(stack: str) -> None:
    """The program's own scale sets (values as it passes them, under the unit tier's mocks)."""
    table = json.loads((rec.TABLE_DIR / f"{stack}.json").read_text())
    recorded = {
        r["release"]: next(o["object"] for o in r["objects"] if o["kind"] == "AutoscalingRunnerSet")
        for r in table["releases"]
        if r["chart"] == "gha-runner-scale-set"
    }
    scale_sets = [r for r in rec.releases(stack) if r["chart"] == "gha-runner-scale-set"]
    assert sorted(r["release"] for r in scale_sets) == sorted(recorded)
    for release in scale_sets:
        values = json.loads(json.dumps(release["values"], default=str))
        ars = recorded[release["release"]]
        pod, _, _ = render_scale_set_values(values, release["release"])
        assert pod["spec"] == ars["spec"]["template"]["spec"], (
            f"{stack} {release['release']}: the model differs from {stack}.json (if the "
            "program's values changed, re-record the table as its README says)"
        )
        assert pod["metadata"] == ars["spec"]["template"].get("metadata", {})
