"""The local node: pods really run on a kubelet (containerd + runc, CNI bridge), as users' will.

One cluster with a node (``LocalCluster(node=True)``) and the ARC controller double for the
module. The runner's ``work`` claim is a ZFS dataset of the local stack's class, mounted by the
CSI driver double's Node service; the caches' clones in job pods are
tests/e2e/test_node_storage.py's.
"""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from lightkube import ApiError, Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Node, Pod
from lightkube.types import PatchType

from components import constants as c
from components.hook_template import hook_template, hook_template_yaml
from localcluster import hook_double
from localcluster.arc_double import (
    AutoscalingListener,
    AutoscalingRunnerSet,
    EphemeralRunner,
    listener_name,
    request_runners,
)
from localcluster.crds import install_arc_crds
from localcluster.harness import LocalCluster
from localcluster.images import CONTROLLER_IMAGE, JOB_IMAGE, SERVICE_IMAGE
from localcluster.kube import Kube, meta
from localcluster.node import NODE_NAME, LocalNode, mount_points_under
from policy.arc_policy.hook_merge import job_pod_name
from tests.e2e import node_env
from tests.e2e.node_env import RESTRICTED_CONTAINER, hook_view, runner_pod

pytestmark = pytest.mark.e2e

T = TypeVar("T")
RESTRICTED = node_env.RESTRICTED_NAMESPACE_LABELS


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 90.0) -> T:
    return node_env.wait_for(what, check, timeout, interval=0.2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with node_env.node_cluster(tmp_path_factory.mktemp("node-cluster")) as cluster:
        node_env.zfs_storage_class(cluster.kube(), cluster.storage.pool.name)
        # No controller chart here: its CRDs, for the ARC double's objects.
        install_arc_crds(cluster.kube())
        yield cluster


_counter = iter(range(1000))


@pytest.fixture
def namespace(kube: Kube) -> str:
    name = f"node-e2e-{next(_counter)}"
    kube.create(
        "Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name,
                                                                          "labels": RESTRICTED}}
    )  # fmt: skip
    wait_for("default service account", lambda: kube.get("ServiceAccount", "default", name))
    return name


def pod_phase(client: Client, namespace: str, name: str) -> str:
    try:
        pod = client.get(Pod, name, namespace=namespace)
    except ApiError:
        return ""
    return str(pod.status.phase if pod.status else "")


def wait_phase(client: Client, namespace: str, name: str, *phases: str, timeout: float = 90) -> str:
    return wait_for(
        f"pod {namespace}/{name} in {phases}",
        lambda: p if (p := pod_phase(client, namespace, name)) in phases else None,
        timeout,
    )


def container_log(node: LocalNode, namespace: str, pod: str, container: str) -> str:
    """The container's log as the kubelet wrote it (podLogsDir in the node's state dir)."""
    logs = sorted((node.dir / "pod-logs").glob(f"{namespace}_{pod}_*/{container}/*.log"))
    assert logs, f"no log of {namespace}/{pod}/{container}"
    # CRI log lines: <time> <stream> <tag> <message>
    return "\n".join(line.split(" ", 3)[3] for line in logs[-1].read_text().splitlines())


def script_pod(namespace: str, name: str, script: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": c.JOB_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "main",
                    "image": JOB_IMAGE,
                    "command": ["/bin/sh", "-c", script],
                    "securityContext": RESTRICTED_CONTAINER,
                }
            ],
            **spec,
        },
    }


# --- the node --------------------------------------------------------------------------------


def test_node_is_ready_schedulable_on_containerd(client: Client, node: LocalNode) -> None:
    found = client.get(Node, NODE_NAME)
    assert found.status is not None and found.status.conditions is not None
    ready = {cond.type: cond.status for cond in found.status.conditions}
    assert ready["Ready"] == "True"
    assert not [t for t in (found.spec.taints or []) if t.key.startswith("node.kubernetes.io/")]
    assert found.status.nodeInfo.containerRuntimeVersion == "containerd://1.6.20"
    assert found.status.nodeInfo.kubeletVersion.startswith("v1.34")
    kubectl = subprocess.run(
        ["ctr", "--address", str(node.containerd_socket), "-n", "k8s.io", "images", "ls", "-q"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert {c.RUNNER_IMAGE, CONTROLLER_IMAGE, JOB_IMAGE, SERVICE_IMAGE} <= set(kubectl)


def test_restricted_pod_runs_on_the_node(client: Client, kube: Kube, node: LocalNode,
                                         namespace: str) -> None:  # fmt: skip
    script = "id -u; id -G; echo hello > /tmp/f && cat /tmp/f"
    kube.create("Pod", script_pod(namespace, "hello", script))
    assert wait_phase(client, namespace, "hello", "Succeeded", "Failed") == "Succeeded"
    pod = client.get(Pod, "hello", namespace=namespace)
    assert pod.spec is not None and pod.spec.nodeName == NODE_NAME
    assert pod.status is not None and pod.status.podIP  # an address in the node's CNI network
    out = container_log(node, namespace, "hello", "main").splitlines()
    # No runAsGroup: the image's /etc/passwd gives gid 1001, /etc/group adds docker (123).
    assert out == ["1001", "1001 123", "hello"]


def test_pod_security_rejects_what_restricted_forbids(kube: Kube, namespace: str) -> None:
    body = script_pod(namespace, "root", "true")
    body["spec"]["securityContext"] = {}
    body["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    with pytest.raises(ApiError) as rejected:
        kube.create("Pod", body)
    assert 'violates PodSecurity "restricted:latest"' in str(rejected.value)
    assert "privileged" in str(rejected.value)


def test_scheduler_rejects_what_the_node_cannot_take(
    client: Client, kube: Kube, namespace: str
) -> None:
    body = script_pod(namespace, "elsewhere", "true", nodeSelector={"kubernetes.io/hostname": "x"})
    kube.create("Pod", body)
    pod = wait_for(
        "a FailedScheduling condition",
        lambda: (
            p
            if (p := client.get(Pod, "elsewhere", namespace=namespace)).status
            and any(cond.reason == "Unschedulable" for cond in p.status.conditions or [])
            else None
        ),
    )
    assert pod.spec is not None and not pod.spec.nodeName


# --- ARC controller double -------------------------------------------------------------------


def _arc_objects(kube: Kube, namespace: str, controller_ns: str, listener_template: Any) -> None:
    """A controller Deployment (as the chart renders it) and one AutoscalingRunnerSet."""
    client = kube.client
    client.create(
        Deployment.from_dict(
            {
                "metadata": {"name": "arc-gha-rs-controller", "namespace": controller_ns},
                "spec": {
                    "selector": {"matchLabels": {"app.kubernetes.io/name": "gha-rs-controller"}},
                    "template": {
                        "metadata": {"labels": {"app.kubernetes.io/name": "gha-rs-controller"}},
                        "spec": {
                            "securityContext": {
                                "runAsNonRoot": True,
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                            "containers": [
                                {
                                    "name": "manager",
                                    "image": CONTROLLER_IMAGE,
                                    "securityContext": RESTRICTED_CONTAINER,
                                }
                            ],
                        },
                    },
                },
            }
        )
    )
    spec: dict[str, Any] = {
        "githubConfigUrl": "https://github.com/example-org",
        "githubConfigSecret": "unused",
        "maxRunners": 1,
        "minRunners": 0,
        "template": {
            "spec": {
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": c.RUNNER_UID,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "runner",
                        "image": c.RUNNER_IMAGE,
                        "command": ["/home/runner/run.sh"],
                        "securityContext": RESTRICTED_CONTAINER,
                    }
                ],
            }
        },
    }
    if listener_template is not None:
        spec["listenerTemplate"] = listener_template
    client.create(
        AutoscalingRunnerSet(
            {
                "apiVersion": "actions.github.com/v1alpha1",
                "kind": "AutoscalingRunnerSet",
                "metadata": {"name": "scale", "namespace": namespace},
                "spec": spec,
            }
        )
    )


RESTRICTED_LISTENER = {
    "spec": {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "listener", "securityContext": RESTRICTED_CONTAINER}],
    }
}


def test_listener_rejected_by_restricted_without_template_then_runs_with_one(
    client: Client, kube: Kube, namespace: str
) -> None:
    controller_ns = f"{namespace}-ctl"
    kube.create("Namespace", {"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": controller_ns, "labels": RESTRICTED}})  # fmt: skip
    wait_for("sa", lambda: kube.get("ServiceAccount", "default", controller_ns))
    _arc_objects(kube, namespace, controller_ns, None)

    def scale_set() -> dict[str, Any] | None:
        found = client.get(AutoscalingRunnerSet, "scale", namespace=namespace).to_dict()
        return found if "runner-scale-set-id" in (meta(found).get("annotations") or {}) else None

    ars = wait_for("the scale set id", scale_set)
    name = listener_name(ars)
    # The controller's pod (no securityContext on the listener) is refused by Pod Security.
    event = wait_for(
        "the listener pod's rejection",
        lambda: next(
            (
                e
                for e in kube.list("Event", controller_ns)
                if e.get("reason") == "FailedCreatePod"
                and (e.get("involvedObject") or {}).get("name") == name
            ),
            None,
        ),
    )
    assert 'violates PodSecurity "restricted:latest"' in event["message"]
    assert 'container "listener"' in event["message"]
    # With a restricted listenerTemplate (merged as mergeListenerPodWithTemplate does) it runs.
    client.patch(
        AutoscalingRunnerSet,
        "scale",
        {"spec": {"listenerTemplate": RESTRICTED_LISTENER}},
        namespace=namespace,
        patch_type=PatchType.MERGE,
    )
    assert wait_phase(client, controller_ns, name, "Running") == "Running"
    pod = client.get(Pod, name, namespace=controller_ns).to_dict()
    listener = pod["spec"]["containers"][0]
    assert listener["command"] == ["/ghalistener"]
    assert listener["image"] == CONTROLLER_IMAGE
    assert listener["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["spec"]["serviceAccountName"] == name
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert meta(pod)["ownerReferences"][0]["kind"] == "AutoscalingListener"
    assert client.get(AutoscalingListener, name, namespace=controller_ns)
    # A runner on request (the listener's patch of spec.replicas): the EphemeralRunner's pod.
    request_runners(client, namespace, "scale", 1)
    runner = wait_for(
        "an EphemeralRunner",
        lambda: next(iter(client.list(EphemeralRunner, namespace=namespace)), None),
    ).to_dict()
    runner_name = meta(runner)["name"]
    assert wait_phase(client, namespace, runner_name, "Running") == "Running"
    pod = client.get(Pod, runner_name, namespace=namespace).to_dict()
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert env["ACTIONS_RUNNER_INPUT_JITCONFIG"]["valueFrom"]["secretKeyRef"] == {
        "name": runner_name,
        "key": "jitToken",
    }
    assert pod["metadata"]["labels"]["actions-ephemeral-runner"] == "True"
    request_runners(client, namespace, "scale", 0)
    wait_for("runner gone", lambda: not list(client.list(EphemeralRunner, namespace=namespace)))


# --- the hook double, from a runner pod's view -----------------------------------------------


def test_job_pod_step_and_service_from_the_runner_pods_view(
    cluster: LocalCluster, client: Client, kube: Kube, node: LocalNode, namespace: str
) -> None:
    template = hook_template("e2e", [])
    runner = runner_pod(kube, node, namespace, template)
    assert wait_phase(client, namespace, runner, "Running") == "Running"
    view = hook_view(cluster.control_plane, node, namespace, runner)
    assert "runner pod's volume" in view.template_source
    assert view.template == yaml.safe_load(hook_template_yaml(template))

    # prepare-job: the job pod, merged with the template, created as the runner's account.
    script = "id -u; echo job > /__w/from-job && cat /__w/from-job; test -w /github/home"
    pod = hook_double.prepare_job(view, image=JOB_IMAGE, entry_point="/bin/sh",
                                  entry_point_args=["-c", script])  # fmt: skip
    name = job_pod_name(runner)
    assert meta(pod)["name"] == name
    assert pod["spec"]["nodeName"] == NODE_NAME
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert wait_phase(client, namespace, name, "Succeeded", "Failed") == "Succeeded"
    assert container_log(node, namespace, name, "job").splitlines() == ["1001", "job"]

    # run-container-step: a Job whose pod gets the template too; its env comes in a Secret.
    job = hook_double.run_container_step(
        view, image=JOB_IMAGE, entry_point="/bin/sh",
        entry_point_args=["-c", 'id -u; echo "$STEP_INPUT"; cat /__w/from-job'],
        env={"STEP_INPUT": "from-the-step"},
    )  # fmt: skip
    job_name = meta(job)["name"]
    assert job_name.startswith(f"{runner}-step-")
    step_pod = wait_for(
        "the step Job's pod",
        lambda: next(iter(client.list(Pod, namespace=namespace, labels={"job-name": job_name})),
                     None),
    )  # fmt: skip
    step = step_pod.metadata.name
    assert wait_phase(client, namespace, step, "Succeeded", "Failed") == "Succeeded"
    assert container_log(node, namespace, step, "job").splitlines() == [
        "1001", "from-the-step", "job"
    ]  # fmt: skip
    wait_for("Job complete", lambda: (client.get(Job, job_name, namespace=namespace).status
                                      or {}).succeeded)  # fmt: skip
    client.delete(Pod, name, namespace=namespace)
    wait_for("job pod gone", lambda: not pod_phase(client, namespace, name))

    # A service container gets only what a `$<service>` entry gives it: none → restricted
    # refuses the whole job pod, naming the service container.
    with pytest.raises(ApiError) as refused:
        hook_double.prepare_job(view, image=JOB_IMAGE, entry_point="/bin/sh",
                                entry_point_args=["-c", "true"], services=[SERVICE_IMAGE])  # fmt: skip
    assert 'violates PodSecurity "restricted:latest"' in str(refused.value)
    assert 'container "redis"' in str(refused.value)


def test_service_container_with_a_template_entry_runs_under_restricted(
    cluster: LocalCluster, client: Client, kube: Kube, node: LocalNode, namespace: str
) -> None:
    template = copy.deepcopy(hook_template("e2e", []))
    job_entry = template["spec"]["containers"][0]
    template["spec"]["containers"].append(
        {"name": "$redis", "securityContext": copy.deepcopy(job_entry["securityContext"])}
    )
    runner = runner_pod(kube, node, namespace, template)
    assert wait_phase(client, namespace, runner, "Running") == "Running"
    view = hook_view(cluster.control_plane, node, namespace, runner)
    hook_double.prepare_job(view, image=JOB_IMAGE, entry_point="/bin/sh",
                            entry_point_args=["-c", "sleep 2; echo ok"],
                            services=[SERVICE_IMAGE])  # fmt: skip
    name = job_pod_name(runner)
    wait_for(
        "both containers started",
        lambda: (
            (s := client.get(Pod, name, namespace=namespace).status)
            and len([cs for cs in s.containerStatuses or [] if cs.state and (cs.state.running
                     or cs.state.terminated)]) == 2
        ),
    )  # fmt: skip
    statuses = {
        cs.name: cs for cs in client.get(Pod, name, namespace=namespace).status.containerStatuses
    }
    assert set(statuses) == {"job", "redis"}


# --- teardown ---------------------------------------------------------------------------------


def test_down_leaves_no_container_mount_netns_device_or_process(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # A short state dir: the driver's registration socket lies deep in it (unix socket paths
    # are at most 107 bytes), and the test's own tmp_path is too long for it.
    with LocalCluster(tmp_path_factory.mktemp("down"), node=True) as cluster:
        assert cluster.node is not None
        node = cluster.node
        ns = "leftovers"
        cluster.kube().create("Namespace", {"apiVersion": "v1", "kind": "Namespace",
                                            "metadata": {"name": ns, "labels": RESTRICTED}})  # fmt: skip
        wait_for("sa", lambda: cluster.kube().get("ServiceAccount", "default", ns))
        # With a ZFS volume: stop unpublishes it (the pod's deletion) before the pool goes.
        volume_class = node_env.zfs_storage_class(cluster.kube(), cluster.storage.pool.name)
        claim = {"accessModes": ["ReadWriteOnce"], "storageClassName": volume_class,
                 "resources": {"requests": {"storage": "1Gi"}}}  # fmt: skip
        sleeper = script_pod(
            ns, "sleeper", "sleep 600",
            volumes=[{"name": "data", "ephemeral": {"volumeClaimTemplate": {"spec": claim}}}],
        )  # fmt: skip
        sleeper["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
        cluster.kube().create("Pod", sleeper)
        wait_phase(cluster.client(), ns, "sleeper", "Running")
        # rootfs, shm, netns, token volumes, the ZFS volume's bind mount
        published = [p for p in mount_points_under(node.dir) if "kubernetes.io~csi" in p]
        assert len(published) == 1
        bridge, marker = node.bridge, str(cluster.state_dir)
    assert not mount_points_under(cluster.state_dir)
    assert not Path(f"/sys/class/net/{bridge}").exists()
    assert not list((node.dir / "containerd" / "state").glob("io.containerd.grpc.v1.cri/netns/*"))
    ours = [
        p.name
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and marker in (p / "cmdline").read_bytes().decode(errors="replace")
        if (p / "cmdline").exists()
    ]
    assert ours == []
