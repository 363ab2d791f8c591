"""The ARC controller double's builders against resourcebuilder.go (gha-runner-scale-set-0.14.2)."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from localcluster.arc_double import (
    CLEANUP_ANNOTATIONS,
    _finalizers_without,
    _fnv_hash_string,
    _safe_encode,
    cleanup_protected,
    listener_name,
    new_ephemeral_runner_pod,
    new_ephemeral_runner_set,
    new_scale_set_listener_pod,
    scale_sets,
)


def _listener(template: Any = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"image": "ghcr.io/actions/gha-runner-scale-set-controller:0.14.2"}
    if template is not None:
        spec["template"] = template
    return {
        "metadata": {"name": "l", "namespace": "arc-systems", "uid": "u", "labels": {"a": "1"}},
        "spec": spec,
    }


def test_hash_suffix_is_fnv32a_safe_encoded() -> None:
    # FNV-32a("a") = 0xe40c292c = 3826002220 (the published test vector).
    assert _fnv_hash_string("a") == _safe_encode("3826002220")
    ars = {
        "metadata": {"name": "set", "namespace": "ns"},
        "spec": {"githubConfigUrl": "https://github.com/o"},
    }
    name = listener_name(ars)
    assert name == f"set-{_fnv_hash_string('ns@@https://github.com/o')[:8]}-listener"


def test_listener_pod_without_template_is_upstreams_base_pod() -> None:
    pod = new_scale_set_listener_pod(_listener(), "l-config", "l")
    assert pod["spec"]["terminationGracePeriodSeconds"] == 60
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert "securityContext" not in pod["spec"]
    (container,) = pod["spec"]["containers"]
    assert container["command"] == ["/ghalistener"]
    assert "securityContext" not in container


def test_template_merge_follows_merge_listener_pod_with_template() -> None:
    template = {
        "metadata": {"labels": {"a": "template", "b": "2"}, "annotations": {"x": "y"}},
        "spec": {
            "securityContext": {"runAsNonRoot": True},
            "containers": [
                {
                    "name": "listener",
                    "env": [{"name": "E", "value": "1"}],
                    "securityContext": {"allowPrivilegeEscalation": False},
                },
                {"name": "sidecar", "image": "s:1"},
            ],
            "volumes": [{"name": "v", "emptyDir": {}}],
        },
    }
    pod = new_scale_set_listener_pod(_listener(template), "l-config", "l")
    # Labels and annotations only fill missing keys.
    assert pod["metadata"]["labels"] == {"a": "1", "b": "2"}
    assert pod["metadata"]["annotations"] == {"x": "y"}
    listener, sidecar = pod["spec"]["containers"]
    assert [e["name"] for e in listener["env"]] == ["LISTENER_CONFIG_PATH", "E"]
    assert listener["securityContext"] == {"allowPrivilegeEscalation": False}
    assert listener["image"].endswith("controller:0.14.2")
    assert sidecar["name"] == "sidecar"
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["listener-config", "v"]
    assert pod["spec"]["securityContext"] == {"runAsNonRoot": True}
    # Assigned unconditionally from the template: its absence drops the base's 60 s.
    assert "terminationGracePeriodSeconds" not in pod["spec"]
    # nodeSelector is only replaced when the template sets one.
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}


def test_runner_pod_adds_jit_env_to_the_runner_container_only() -> None:
    runner = {
        "metadata": {"name": "r", "namespace": "ns", "uid": "u", "labels": {"l": "1"}},
        "spec": {
            "metadata": {"labels": {"t": "2"}},
            "spec": {"containers": [{"name": "runner", "image": "i"}, {"name": "side"}]},
        },
    }
    pod = new_ephemeral_runner_pod(runner, "r")
    runner_c, side = pod["spec"]["containers"]
    assert [e["name"] for e in runner_c["env"]] == [
        "ACTIONS_RUNNER_INPUT_JITCONFIG",
        "GITHUB_ACTIONS_RUNNER_EXTRA_USER_AGENT",
        "ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE",
    ]
    assert "env" not in side
    assert pod["metadata"]["labels"]["t"] == "2"
    assert pod["metadata"]["labels"]["actions-ephemeral-runner"] == "True"
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "EphemeralRunner"


def test_cleanup_protected_follows_remove_finalizers_from_dependent_resources() -> None:
    # What the scale-set chart annotates in kubernetes mode (manager + kube-mode objects).
    annotations = {
        "actions.github.com/cleanup-manager-role-binding": "s-gha-rs-manager",
        "actions.github.com/cleanup-manager-role-name": "s-gha-rs-manager",
        "actions.github.com/cleanup-kubernetes-mode-role-binding-name": "s-gha-rs-kube-mode",
        "actions.github.com/cleanup-kubernetes-mode-role-name": "s-gha-rs-kube-mode",
        "actions.github.com/cleanup-kubernetes-mode-service-account-name": "s-gha-rs-kube-mode",
        "actions.github.com/values-hash": "h",
    }
    ars = {"metadata": {"name": "s", "namespace": "ns", "annotations": annotations}}
    # Upstream's order: kube-mode RoleBinding, Role, ServiceAccount, (no-permission SA and
    # GitHub secret: not annotated here, so skipped), manager RoleBinding, then Role.
    assert cleanup_protected(ars) == [
        ("RoleBinding", "s-gha-rs-kube-mode"),
        ("Role", "s-gha-rs-kube-mode"),
        ("ServiceAccount", "s-gha-rs-kube-mode"),
        ("RoleBinding", "s-gha-rs-manager"),
        ("Role", "s-gha-rs-manager"),
    ]
    assert cleanup_protected({"metadata": {"name": "s", "namespace": "ns"}}) == []
    assert len(CLEANUP_ANNOTATIONS) == 7


def test_finalizer_removal_keeps_the_others_and_says_when_there_is_none() -> None:
    obj = {"metadata": {"finalizers": ["a", "actions.github.com/cleanup-protection", "b"]}}
    assert _finalizers_without(obj, "actions.github.com/cleanup-protection") == ["a", "b"]
    assert _finalizers_without(obj, "other") is None
    assert _finalizers_without({"metadata": {}}, "a") is None


def test_runner_set_spec_is_go_json_with_the_required_patch_id() -> None:
    ars = {
        "metadata": {
            "name": "s",
            "namespace": "ns",
            "uid": "u",
            "annotations": {"runner-scale-set-id": "7"},
        },
        "spec": {"githubConfigUrl": "https://github.com/o", "githubConfigSecret": "gh"},
    }
    spec = new_ephemeral_runner_set(ars)["spec"]
    # EphemeralRunnerSetSpec: replicas is omitempty (0 is left out), patchID is not and the
    # upstream CRD requires it.
    assert spec["patchID"] == 0 and "replicas" not in spec
    assert spec["ephemeralRunnerSpec"]["runnerScaleSetId"] == 7


def test_scale_sets_are_none_while_the_api_server_does_not_serve_the_group() -> None:
    request = httpx2.Request("GET", "https://127.0.0.1/apis/actions.github.com/v1alpha1/x")

    class Unserved:
        def list(self, *_: Any, **__: Any) -> Any:
            # What kube-apiserver answers for a group it does not serve: text, not a Status.
            response = httpx2.Response(404, text="404 page not found", request=request)
            raise httpx2.HTTPStatusError("404", request=request, response=response)

    class Failing(Unserved):
        def list(self, *_: Any, **__: Any) -> Any:
            response = httpx2.Response(403, text="forbidden", request=request)
            raise httpx2.HTTPStatusError("403", request=request, response=response)

    assert scale_sets(Unserved()) is None  # type: ignore[arg-type]
    with pytest.raises(httpx2.HTTPStatusError):
        scale_sets(Failing())  # type: ignore[arg-type]
