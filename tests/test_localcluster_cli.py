"""``python -m localcluster``'s pure parts: the overview line and the listener phases of status."""

from __future__ import annotations

from typing import Any

from localcluster.__main__ import kubectl_line, listener_phases
from localcluster.arc_double import listener_name


def _scale_set(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "arc-runners"},
        "spec": {"githubConfigUrl": "https://github.com/example-org"},
    }


def _pod(name: str, phase: str | None) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {"phase": phase} if phase else {}}


def test_each_scale_set_gets_the_phase_of_its_listener_pod() -> None:
    running, pending = _scale_set("a"), _scale_set("b")
    pods = [
        _pod(listener_name(running), "Running"),
        _pod(listener_name(pending), None),
        _pod("unrelated", "Failed"),
    ]
    assert listener_phases([pending, running], pods) == {
        listener_name(running): "Running",
        listener_name(pending): "Pending",  # no phase yet: the API server has not set one
    }


def test_a_listener_pod_not_created_yet_has_no_phase() -> None:
    missing = _scale_set("c")
    assert listener_phases([missing], []) == {listener_name(missing): ""}


def test_no_scale_set_no_listener() -> None:
    assert listener_phases([], [_pod("x-listener", "Running")]) == {}


def test_the_overview_line_shows_nodes_and_pods(tmp_path: Any) -> None:
    kinds = kubectl_line(tmp_path / "kubeconfig").split(" get ")[1].split()[0].split(",")
    assert kinds[:2] == ["nodes", "pods"]
    assert {"autoscalingrunnersets", "persistentvolumeclaims", "zfsvolumes"} <= set(kinds)
