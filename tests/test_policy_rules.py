"""Every resource rule of the policy pack, called directly: violating and compliant cases."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from policy.arc_policy.rules import container_security as cs
from policy.arc_policy.rules import credentials, images, pod_security, runner_mode
from policy.arc_policy.testing import UNKNOWN_STRING, Declared, declared, run_resource_policy

CM = "kubernetes:core/v1:ConfigMap"
ARS = "kubernetes:actions.github.com/v1alpha1:AutoscalingRunnerSet"
RELEASE = "kubernetes:helm.sh/v3:Release"
CHART = "kubernetes:helm.sh/v4:Chart"

#: A compliant hook template (what the project's HookExtension writes).
TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app.kubernetes.io/part-of": "arc-zfs-cache"}},
    "spec": {
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1001,
            "runAsGroup": 123,
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
                "env": [{"name": "CONAN_HOME", "value": "/CONAN_HOME"}],
                "volumeMounts": [{"name": "cache", "mountPath": "/CONAN_HOME"}],
            }
        ],
        "volumes": [{"name": "cache", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}],
    },
}

#: A compliant runner container and pod spec (kubernetes mode, hook template mounted).
RUNNER = {
    "name": "runner",
    "image": "ghcr.io/actions/actions-runner:2.324.0",
    "command": ["/home/runner/run.sh"],
    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    "env": [
        {"name": "ACTIONS_RUNNER_CONTAINER_HOOKS", "value": "/home/runner/k8s/index.js"},
        {
            "name": "ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE",
            "value": "/home/runner/pod-template/content",
        },
        {"name": "ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER", "value": "true"},
    ],
    "volumeMounts": [
        {"name": "hook-template", "mountPath": "/home/runner/pod-template"},
        {"name": "work", "mountPath": "/home/runner/_work"},
    ],
}
RUNNER_SPEC: dict[str, Any] = {
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 1001,
        "fsGroup": 123,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "containers": [RUNNER],
    "volumes": [
        {"name": "work", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
        {"name": "hook-template", "configMap": {"name": "linux-hook-template"}},
    ],
}


def template_cm(
    template: Any, *, labelled: bool = True, name: str = "linux-hook-template"
) -> Declared:
    """A hook-template ConfigMap."""
    labels = {"arc-zfs-cache.io/hook-template": "true"} if labelled else {}
    content = template if isinstance(template, str) else yaml.safe_dump(template)
    return declared(
        CM,
        name,
        {
            "metadata": {"name": name, "namespace": "arc-runners", "labels": labels},
            "data": {"content": content},
        },
    )


def ars(spec: dict[str, Any], **metadata: Any) -> Declared:
    """An AutoscalingRunnerSet with this runner pod spec."""
    return declared(
        ARS,
        "linux",
        {
            "apiVersion": "actions.github.com/v1alpha1",
            "kind": "AutoscalingRunnerSet",
            "metadata": {"name": "linux", "namespace": "arc-runners", **metadata},
            "spec": {"githubConfigSecret": "creds", "template": {"spec": spec}},
        },
    )


def release(
    values: dict[str, Any],
    type_: str = RELEASE,
    chart: str = "oci://ghcr.io/actions/actions-runner-controller-charts/gha-runner-scale-set",
) -> Declared:
    """A scale-set Helm release with these values."""
    return declared(type_, "linux", {"chart": chart, "namespace": "arc-runners", "values": values})


def kube_values(**overrides: Any) -> dict[str, Any]:
    """Compliant chart values in kubernetes mode."""
    values: dict[str, Any] = {
        "githubConfigUrl": "https://github.com/acme",
        "githubConfigSecret": "arc-github-credentials",
        "containerMode": {"type": "kubernetes"},
        "template": {"spec": copy.deepcopy(RUNNER_SPEC)},
    }
    values.update(overrides)
    return values


def tweak(template: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``template`` with the dotted ``path`` set (``spec.containers.0.x``)."""
    result = copy.deepcopy(template)
    node: Any = result
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    last = keys[-1]
    if value is DELETE:
        del node[last]
    elif isinstance(node, list) and int(last) == len(node):
        node.append(value)
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return result


DELETE = object()
COMPLIANT = [template_cm(TEMPLATE), ars(RUNNER_SPEC), release(kube_values())]
ALL_RESOURCE_POLICIES = [
    *cs.RULES,
    *pod_security.RULES,
    runner_mode.RUNNER_CONTAINER_MODE,
    runner_mode.RUNNER_REQUIRES_JOB_CONTAINER,
    runner_mode.HOOK_TEMPLATE_DIRECTORY_MOUNT,
    *images.RULES,
    *credentials.RULES,
]


@pytest.mark.parametrize("policy", ALL_RESOURCE_POLICIES, ids=lambda p: p.name)
@pytest.mark.parametrize("resource", COMPLIANT, ids=["template", "ars", "release"])
def test_compliant_resources_pass_every_rule(policy: Any, resource: Declared) -> None:
    assert run_resource_policy(policy, resource) == []


def one(policy: Any, resource: Declared, config: dict[str, Any] | None = None) -> str:
    """The single message ``policy`` reports for ``resource``."""
    messages = run_resource_policy(policy, resource, config)
    assert len(messages) == 1, messages
    return messages[0]


# --- container security ----------------------------------------------------------------------


def test_privileged_job_container() -> None:
    bad = template_cm(tweak(TEMPLATE, "spec.containers.0.securityContext.privileged", True))
    message = one(cs.NO_PRIVILEGED_CONTAINERS, bad)
    assert message.startswith(
        "ConfigMap arc-runners/linux-hook-template (job pod), container '$job'"
    )
    assert "data.content: spec.containers[$job].securityContext.privileged" in message
    assert "Fix: remove privileged" in message


def test_privileged_runner_and_sidecar() -> None:
    spec = tweak(RUNNER_SPEC, "containers.0.securityContext.privileged", True)
    assert "spec.template.spec.containers[runner].securityContext.privileged" in one(
        cs.NO_PRIVILEGED_CONTAINERS, ars(spec)
    )
    sidecar = tweak(
        TEMPLATE,
        "spec.containers.1",
        {"name": "dind", "image": "docker:28-dind", "securityContext": {"privileged": True}},
    )
    assert "container 'dind'" in one(cs.NO_PRIVILEGED_CONTAINERS, template_cm(sidecar))


def test_privilege_escalation() -> None:
    # A template without a $job entry leaves the hook's job container with no securityContext.
    no_job = tweak(TEMPLATE, "spec.containers", [])
    message = one(cs.NO_PRIVILEGE_ESCALATION, template_cm(no_job))
    assert "container '$job'" in message
    assert "spec.containers[$job].securityContext.allowPrivilegeEscalation" in message
    assert "is not set (defaults to true)" in message
    explicit = tweak(TEMPLATE, "spec.containers.0.securityContext.allowPrivilegeEscalation", True)
    assert "is True" in one(cs.NO_PRIVILEGE_ESCALATION, template_cm(explicit))
    runner = tweak(RUNNER_SPEC, "containers.0.securityContext", DELETE)
    assert "spec.template.spec.containers[runner]" in one(cs.NO_PRIVILEGE_ESCALATION, ars(runner))


def test_service_containers_of_the_template_are_checked() -> None:
    with_service = tweak(TEMPLATE, "spec.containers.1", {"name": "$redis", "securityContext": {}})
    messages = run_resource_policy(cs.NO_PRIVILEGE_ESCALATION, template_cm(with_service))
    assert len(messages) == 1 and "container '$redis'" in messages[0]


def test_init_containers_replaced_by_the_template_are_checked() -> None:
    init = tweak(TEMPLATE, "spec.initContainers", [{"name": "prep", "image": "busybox:1.37"}])
    message = one(cs.NO_PRIVILEGE_ESCALATION, template_cm(init))
    assert "spec.initContainers[prep].securityContext.allowPrivilegeEscalation" in message


def test_capabilities() -> None:
    not_dropped = tweak(
        TEMPLATE, "spec.containers.0.securityContext.capabilities", {"drop": ["NET_RAW"]}
    )
    assert 'drop: ["ALL"]' in one(cs.DROP_ALL_CAPABILITIES, template_cm(not_dropped))
    added = tweak(TEMPLATE, "spec.containers.0.securityContext.capabilities.add", ["SYS_ADMIN"])
    message = one(cs.DROP_ALL_CAPABILITIES, template_cm(added))
    assert "'SYS_ADMIN'" in message and "capabilities.add" in message
    bind = tweak(
        TEMPLATE, "spec.containers.0.securityContext.capabilities.add", ["NET_BIND_SERVICE"]
    )
    assert run_resource_policy(cs.DROP_ALL_CAPABILITIES, template_cm(bind)) == []
    assert (
        run_resource_policy(
            cs.DROP_ALL_CAPABILITIES, template_cm(added), {"allowedCapabilities": ["SYS_ADMIN"]}
        )
        == []
    )


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            "spec.securityContext.runAsUser",
            0,
            "spec.securityContext.runAsUser: runAsUser: 0 runs as root",
        ),
        (
            "spec.securityContext.runAsNonRoot",
            False,
            "spec.securityContext.runAsNonRoot: runAsNonRoot: false",
        ),
        ("spec.securityContext.runAsNonRoot", DELETE, "neither on the container nor on the pod"),
        (
            "spec.containers.0.securityContext.runAsUser",
            0,
            "spec.containers[$job].securityContext.runAsUser",
        ),
        (
            "spec.containers.0.securityContext.runAsNonRoot",
            False,
            "spec.containers[$job].securityContext.runAsNonRoot",
        ),
        ("spec.securityContext.runAsUser", 1000, "not an allowed uid [1001]"),
    ],
)
def test_run_as_non_root(path: str, value: Any, expected: str) -> None:
    assert expected in one(cs.RUN_AS_NON_ROOT, template_cm(tweak(TEMPLATE, path, value)))


def test_run_as_non_root_config_and_container_level() -> None:
    other_uid = template_cm(tweak(TEMPLATE, "spec.securityContext.runAsUser", 1000))
    assert run_resource_policy(cs.RUN_AS_NON_ROOT, other_uid, {"allowedUids": []}) == []
    assert run_resource_policy(cs.RUN_AS_NON_ROOT, other_uid, {"allowedUids": [1000.0]}) == []
    container_only = tweak(TEMPLATE, "spec.securityContext.runAsNonRoot", DELETE)
    container_only = tweak(container_only, "spec.containers.0.securityContext.runAsNonRoot", True)
    assert run_resource_policy(cs.RUN_AS_NON_ROOT, template_cm(container_only)) == []


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            "spec.securityContext.seccompProfile",
            {"type": "Unconfined"},
            "spec.securityContext.seccompProfile.type: seccomp profile 'Unconfined'",
        ),
        (
            "spec.securityContext.seccompProfile",
            DELETE,
            "spec.containers[$job].securityContext.seccompProfile: no seccomp profile",
        ),
        (
            "spec.containers.0.securityContext.seccompProfile",
            {"type": "Unconfined"},
            "spec.containers[$job].securityContext.seccompProfile.type",
        ),
    ],
)
def test_seccomp(path: str, value: Any, expected: str) -> None:
    assert expected in one(cs.SECCOMP_PROFILE, template_cm(tweak(TEMPLATE, path, value)))


def test_seccomp_on_every_container_is_enough() -> None:
    spec = tweak(TEMPLATE, "spec.securityContext.seccompProfile", DELETE)
    spec = tweak(
        spec,
        "spec.containers.0.securityContext.seccompProfile",
        {"type": "Localhost", "localhostProfile": "ci.json"},
    )
    assert run_resource_policy(cs.SECCOMP_PROFILE, template_cm(spec)) == []


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            "spec.securityContext.sysctls",
            [{"name": "kernel.msgmax", "value": "1"}],
            "sysctl 'kernel.msgmax'",
        ),
        ("spec.securityContext.seLinuxOptions", {"type": "spc_t"}, "SELinux type 'spc_t'"),
        ("spec.securityContext.seLinuxOptions", {"user": "system_u"}, "custom SELinux user"),
        ("spec.containers.0.securityContext.procMount", "Unmasked", "procMount 'Unmasked'"),
        ("spec.containers.0.securityContext.windowsOptions", {"hostProcess": True}, "host process"),
        (
            "spec.containers.0.securityContext.appArmorProfile",
            {"type": "Unconfined"},
            "AppArmor profile Unconfined",
        ),
        (
            "metadata.annotations",
            {"container.apparmor.security.beta.kubernetes.io/job": "unconfined"},
            "AppArmor profile 'unconfined'",
        ),
    ],
)
def test_unsafe_pod_options(path: str, value: Any, expected: str) -> None:
    assert expected in one(cs.NO_UNSAFE_POD_OPTIONS, template_cm(tweak(TEMPLATE, path, value)))


def test_safe_pod_options_pass() -> None:
    fine = tweak(
        TEMPLATE,
        "spec.securityContext.sysctls",
        [{"name": "net.ipv4.ping_group_range", "value": "0 1"}],
    )
    fine = tweak(
        fine, "spec.containers.0.securityContext.appArmorProfile", {"type": "RuntimeDefault"}
    )
    fine = tweak(
        fine, "spec.securityContext.seLinuxOptions", {"type": "container_t", "level": "s0:c1"}
    )
    assert run_resource_policy(cs.NO_UNSAFE_POD_OPTIONS, template_cm(fine)) == []


# --- pod security ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("spec.hostNetwork", True, "spec.hostNetwork: hostNetwork: true"),
        ("spec.hostPID", True, "spec.hostPID"),
        ("spec.hostIPC", True, "spec.hostIPC"),
        (
            "spec.volumes.1",
            {"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}},
            "volumes[docker].hostPath: hostPath volume mounts the node's /var/run/docker.sock",
        ),
        (
            "spec.containers.0.ports",
            [{"containerPort": 80, "hostPort": 8080}],
            "spec.containers[$job].ports.hostPort: hostPort 8080",
        ),
    ],
)
def test_host_access(path: str, value: Any, expected: str) -> None:
    assert expected in one(pod_security.NO_HOST_ACCESS, template_cm(tweak(TEMPLATE, path, value)))


def test_host_access_in_runner_pod() -> None:
    spec = tweak(RUNNER_SPEC, "hostNetwork", True)
    assert "spec.template.spec.hostNetwork" in one(pod_security.NO_HOST_ACCESS, ars(spec))


def test_volume_types() -> None:
    nfs = tweak(
        TEMPLATE, "spec.volumes.1", {"name": "share", "nfs": {"server": "nas", "path": "/x"}}
    )
    assert "volume type 'nfs'" in one(pod_security.RESTRICTED_VOLUME_TYPES, template_cm(nfs))
    host = tweak(TEMPLATE, "spec.volumes.1", {"name": "h", "hostPath": {"path": "/"}})
    assert run_resource_policy(pod_security.RESTRICTED_VOLUME_TYPES, template_cm(host)) == []


def test_service_account_token() -> None:
    missing = template_cm(tweak(TEMPLATE, "spec.automountServiceAccountToken", DELETE))
    message = one(pod_security.NO_SERVICE_ACCOUNT_TOKEN, missing)
    assert "spec.automountServiceAccountToken" in message and "defaults to true" in message
    projected = tweak(
        TEMPLATE,
        "spec.volumes.1",
        {"name": "tok", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
    )
    assert "projected service account token" in one(
        pod_security.NO_SERVICE_ACCOUNT_TOKEN, template_cm(projected)
    )
    # Runner pods need their token (the hook calls the API); the rule is for job pods only.
    assert run_resource_policy(pod_security.NO_SERVICE_ACCOUNT_TOKEN, ars(RUNNER_SPEC)) == []


WORKLOAD = declared(
    "kubernetes:apps/v1:DaemonSet",
    "zfs-node",
    {
        "metadata": {"name": "zfs-localpv-node", "namespace": "openebs"},
        "spec": {
            "template": {
                "spec": {
                    "hostNetwork": True,
                    "containers": [
                        {
                            "name": "plugin",
                            "image": "openebs/zfs-driver:2.8.0",
                            "securityContext": {
                                "privileged": True,
                                "capabilities": {"add": ["SYS_ADMIN"]},
                            },
                        }
                    ],
                    "volumes": [{"name": "dev", "hostPath": {"path": "/dev"}}],
                }
            }
        },
    },
)


def test_privileged_workloads_and_their_exemption() -> None:
    messages = run_resource_policy(pod_security.NO_PRIVILEGED_WORKLOADS, WORKLOAD)
    assert len(messages) == 4
    assert all(m.startswith("DaemonSet openebs/zfs-localpv-node (pod)") for m in messages)
    assert any(
        "spec.template.spec.containers[plugin].securityContext.privileged" in m for m in messages
    )
    assert any("'SYS_ADMIN', beyond Pod Security baseline" in m for m in messages)
    config = {
        "exemptions": [
            {"resource": "DaemonSet/openebs/*zfs-localpv-node", "reason": "CSI node plugin"}
        ]
    }
    assert run_resource_policy(pod_security.NO_PRIVILEGED_WORKLOADS, WORKLOAD, config) == []
    # Job/runner rules do not look at other workloads, and the workload rule not at runners.
    assert run_resource_policy(cs.NO_PRIVILEGED_CONTAINERS, WORKLOAD) == []
    privileged_runner = ars(tweak(RUNNER_SPEC, "containers.0.securityContext.privileged", True))
    assert run_resource_policy(pod_security.NO_PRIVILEGED_WORKLOADS, privileged_runner) == []


@pytest.mark.parametrize(
    ("type_", "keys"),
    [
        ("kubernetes:core/v1:Pod", ()),
        ("kubernetes:apps/v1:Deployment", ("spec", "template")),
        ("kubernetes:batch/v1:Job", ("spec", "template")),
        ("kubernetes:batch/v1:CronJob", ("spec", "jobTemplate", "spec", "template")),
        ("kubernetes:core/v1:PodTemplate", ("template",)),
    ],
)
def test_every_workload_kind(type_: str, keys: tuple[str, ...]) -> None:
    pod: dict[str, Any] = {
        "spec": {
            "containers": [{"name": "c", "image": "x:1", "securityContext": {"privileged": True}}]
        }
    }
    props: dict[str, Any] = pod
    for key in reversed(keys):
        props = {key: props}
    props = {"metadata": {"name": "w", "namespace": "ns"}, **props}
    message = one(pod_security.NO_PRIVILEGED_WORKLOADS, declared(type_, "w", props))
    assert (
        "".join(f"{k}." for k in keys) + "spec.containers[c].securityContext.privileged" in message
    )


# --- runner rules ------------------------------------------------------------------------------


def test_container_mode_dind_and_none() -> None:
    dind = release(kube_values(containerMode={"type": "dind"}))
    message = one(runner_mode.RUNNER_CONTAINER_MODE, dind)
    assert message.startswith("Release arc-runners/linux (runner pod): values.containerMode.type")
    assert "privileged Docker daemon" in message
    none = release(kube_values(containerMode=None))
    assert "no container mode" in one(runner_mode.RUNNER_CONTAINER_MODE, none)
    assert (
        run_resource_policy(
            runner_mode.RUNNER_CONTAINER_MODE,
            dind,
            {"allowedContainerModes": ["kubernetes", "dind"]},
        )
        == []
    )


def test_container_mode_of_a_rendered_scale_set() -> None:
    spec = tweak(
        RUNNER_SPEC,
        "initContainers",
        [
            {
                "name": "dind",
                "image": "docker:28-dind",
                "restartPolicy": "Always",
                "securityContext": {"privileged": True},
            }
        ],
    )
    assert "dind mode" in one(runner_mode.RUNNER_CONTAINER_MODE, ars(spec))
    plain = tweak(RUNNER_SPEC, "containers.0.env", [])
    assert "no container mode" in one(runner_mode.RUNNER_CONTAINER_MODE, ars(plain))


def test_dind_release_renders_a_privileged_sidecar() -> None:
    dind = release(kube_values(containerMode={"type": "dind"}))
    message = one(cs.NO_PRIVILEGED_CONTAINERS, dind)
    assert (
        "container 'dind'" in message
        and "values.containerMode.type.securityContext.privileged" in message
    )


def test_require_job_container() -> None:
    env = [e for e in RUNNER["env"] if e["name"] != "ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER"]
    missing = ars(tweak(RUNNER_SPEC, "containers.0.env", env))
    message = one(runner_mode.RUNNER_REQUIRES_JOB_CONTAINER, missing)
    assert (
        "spec.template.spec.containers[runner].env[ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER]" in message
    )
    assert "is not set" in message
    off = ars(
        tweak(
            RUNNER_SPEC,
            "containers.0.env",
            [*env, {"name": "ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER", "value": "false"}],
        )
    )
    assert "is 'false'" in one(runner_mode.RUNNER_REQUIRES_JOB_CONTAINER, off)
    # In kubernetes mode the chart adds the variable when the values do not set it.
    values = kube_values()
    values["template"]["spec"]["containers"][0]["env"] = env
    assert run_resource_policy(runner_mode.RUNNER_REQUIRES_JOB_CONTAINER, release(values)) == []
    no_runner = ars(tweak(RUNNER_SPEC, "containers.0.name", "main"))
    assert "no container named 'runner'" in one(
        runner_mode.RUNNER_REQUIRES_JOB_CONTAINER, no_runner
    )


def test_hook_template_mount_is_a_directory() -> None:
    sub_path = tweak(
        RUNNER_SPEC,
        "containers.0.volumeMounts.0",
        {
            "name": "hook-template",
            "mountPath": "/home/runner/pod-template/content",
            "subPath": "content",
        },
    )
    sub_path = tweak(sub_path, "containers.0.env.1.value", "/home/runner/pod-template/content")
    message = one(runner_mode.HOOK_TEMPLATE_DIRECTORY_MOUNT, ars(sub_path))
    assert (
        "volumeMounts[hook-template].subPath" in message
        and "never reach running runner pods" in message
    )
    outside = tweak(RUNNER_SPEC, "containers.0.env.1.value", "/etc/hook/template.yaml")
    assert "not inside any volume mount" in one(
        runner_mode.HOOK_TEMPLATE_DIRECTORY_MOUNT, ars(outside)
    )
    assert runner_mode.HOOK_TEMPLATE_DIRECTORY_MOUNT.enforcement_level.value == "advisory"


def test_runner_without_hook_template_gets_the_bare_job_pod() -> None:
    env = [e for e in RUNNER["env"] if e["name"] != "ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE"]
    bare = ars(tweak(RUNNER_SPEC, "containers.0.env", env))
    message = one(pod_security.NO_SERVICE_ACCOUNT_TOKEN, bare)
    assert message.startswith("AutoscalingRunnerSet arc-runners/linux (job pod)")
    assert "sets no ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE" in message
    assert "container '$job'" in one(cs.NO_PRIVILEGE_ESCALATION, bare)


# --- images -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("ghcr.io/actions/actions-runner:2.324.0", True),
        ("ghcr.io/actions/actions-runner:latest", False),
        ("ghcr.io/actions/actions-runner", False),
        ("ubuntu", False),
        ("localhost:5000/runner", False),
        ("localhost:5000/runner:1", True),
        ("ghcr.io/actions/actions-runner@sha256:" + "a" * 64, True),
        ("ghcr.io/actions/actions-runner:latest@sha256:" + "a" * 64, True),
    ],
)
def test_image_parsing(image: str, pinned: bool) -> None:
    assert images.parse_image(image).pinned is pinned


def test_pinned_images() -> None:
    latest = ars(tweak(RUNNER_SPEC, "containers.0.image", "ghcr.io/actions/actions-runner:latest"))
    message = one(images.PINNED_IMAGES, latest)
    assert "spec.template.spec.containers[runner].image" in message and "has latest" in message
    untagged = tweak(
        TEMPLATE,
        "spec.containers.1",
        {"name": "cache-warmer", "image": "busybox", "securityContext": {}},
    )
    assert "no tag (means latest)" in one(images.PINNED_IMAGES, template_cm(untagged))
    # The $job image is the workflow's (the hook ignores the template's): not checked.
    job_image = tweak(TEMPLATE, "spec.containers.0.image", "ubuntu:latest")
    assert run_resource_policy(images.PINNED_IMAGES, template_cm(job_image)) == []
    # The chart's default runner image is :latest when values set no template.
    defaults = kube_values()
    del defaults["template"]
    assert "actions-runner:latest" in one(images.PINNED_IMAGES, release(defaults))


def test_allowed_registries() -> None:
    config = {"allowedRegistries": ["registry.example.com/mirror/"]}
    assert "not from an allowed registry" in one(images.PINNED_IMAGES, ars(RUNNER_SPEC), config)
    mirrored = ars(
        tweak(
            RUNNER_SPEC, "containers.0.image", "registry.example.com/mirror/actions-runner:2.324.0"
        )
    )
    assert run_resource_policy(images.PINNED_IMAGES, mirrored, config) == []


def test_controller_release_image() -> None:
    controller = declared(
        RELEASE,
        "arc",
        {
            "chart": "gha-runner-scale-set-controller",
            "namespace": "arc-systems",
            "values": {"image": {"tag": "latest"}},
        },
    )
    assert "values.image" in one(images.PINNED_IMAGES, controller)
    pinned = declared(
        RELEASE,
        "arc",
        {"chart": "gha-runner-scale-set-controller", "values": {"image": {"tag": "0.14.2"}}},
    )
    assert run_resource_policy(images.PINNED_IMAGES, pinned) == []


# --- credentials --------------------------------------------------------------------------------


def test_inline_github_credentials_in_values() -> None:
    inline = release(kube_values(githubConfigSecret={"github_token": "ghp_x"}))
    message = one(credentials.NO_INLINE_CREDENTIALS, inline)
    assert "values.githubConfigSecret" in message and "github_token" in message
    assert "set githubConfigSecret to its name" in message
    v4 = release(
        kube_values(githubConfigSecret={"github_app_id": "1", "github_app_private_key": "k"}),
        type_=CHART,
    )
    assert "github_app_id, github_app_private_key" in one(credentials.NO_INLINE_CREDENTIALS, v4)


def test_inline_credentials_rendered_by_the_chart() -> None:
    annotated = ars(
        RUNNER_SPEC,
        annotations={"actions.github.com/cleanup-github-secret-name": "linux-gha-rs-github-secret"},
    )
    assert "rendered from inline GitHub credentials" in one(
        credentials.NO_INLINE_CREDENTIALS, annotated
    )
    chart_secret = declared(
        "kubernetes:core/v1:Secret",
        "linux-gha-rs-github-secret",
        {
            "metadata": {
                "name": "linux-gha-rs-github-secret",
                "namespace": "arc-runners",
                "labels": {"app.kubernetes.io/part-of": "gha-rs"},
            },
            "data": {"github_token": "Z2hw"},
        },
    )
    assert "rendered this Secret from inline values" in one(
        credentials.NO_INLINE_CREDENTIALS, chart_secret
    )
    own_secret = declared(
        "kubernetes:core/v1:Secret",
        "creds",
        {"metadata": {"name": "creds"}, "stringData": {"github_token": "ghp"}},
    )
    assert run_resource_policy(credentials.NO_INLINE_CREDENTIALS, own_secret) == []


def test_literal_secret_env() -> None:
    literal = tweak(TEMPLATE, "spec.containers.0.env", [{"name": "NPM_TOKEN", "value": "npm_abc"}])
    message = one(credentials.NO_INLINE_CREDENTIALS, template_cm(literal))
    assert "spec.containers[$job].env[NPM_TOKEN].value" in message and "secretKeyRef" in message
    from_secret = tweak(
        TEMPLATE,
        "spec.containers.0.env",
        [{"name": "NPM_TOKEN", "valueFrom": {"secretKeyRef": {"name": "npm", "key": "token"}}}],
    )
    assert run_resource_policy(credentials.NO_INLINE_CREDENTIALS, template_cm(from_secret)) == []


# --- preview: unknown values ----------------------------------------------------------------------


UNKNOWNS = [
    template_cm(UNKNOWN_STRING),
    template_cm(
        yaml.safe_dump(tweak(TEMPLATE, "spec.containers.0.securityContext", UNKNOWN_STRING))
    ),
    template_cm(
        yaml.safe_dump(
            tweak(
                TEMPLATE,
                "spec.containers.0.securityContext.allowPrivilegeEscalation",
                UNKNOWN_STRING,
            )
        )
    ),
    template_cm(yaml.safe_dump(tweak(TEMPLATE, "spec.securityContext", UNKNOWN_STRING))),
    release(UNKNOWN_STRING),  # type: ignore[arg-type]
    release(kube_values(containerMode={"type": UNKNOWN_STRING})),
    ars(UNKNOWN_STRING),  # type: ignore[arg-type]
    ars(tweak(RUNNER_SPEC, "containers.0.env", UNKNOWN_STRING)),
    ars(tweak(RUNNER_SPEC, "containers.0.image", UNKNOWN_STRING)),
]


@pytest.mark.parametrize("policy", ALL_RESOURCE_POLICIES, ids=lambda p: p.name)
@pytest.mark.parametrize("resource", UNKNOWNS, ids=lambda r: "unknown")
def test_unknown_values_are_skipped_not_failed(policy: Any, resource: Declared) -> None:
    """In preview a value may be unknown: the check that needs it is skipped, never failed."""
    assert run_resource_policy(policy, resource) == []
