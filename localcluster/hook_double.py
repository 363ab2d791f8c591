"""runner-container-hooks TEST DOUBLE: the job, step and service pods a runner's hook creates.

The hooks (``/home/runner/k8s/index.js`` and ``/home/runner/k8s-novolume/index.js`` in the
runner image) are Node.js programs that cannot run here (no registry, so no runner image, and
no GitHub to hand them a job). This double does what they do at job start, from the runner
pod's view, for the hook its ``ACTIONS_RUNNER_CONTAINER_HOOKS`` selects
(``actions/runner-container-hooks``, ``packages/k8s``):

* hook **0.7** (tag ``v0.7.0``, container mode ``kubernetes``):

  * ``prepare-job`` (``src/hooks/prepare-job.ts``, ``src/k8s/index.ts`` ``createPod``): the
    job pod ``<runner-pod>-workflow`` with the ``job`` container, one container per workflow
    service, the runner's ``work`` claim, ``nodeName`` of the runner's node (or the required
    node affinity with ``ACTIONS_RUNNER_USE_KUBE_SCHEDULER=true``), merged with the template
    file ``ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE``;
  * ``run-container-step`` (``src/hooks/run-container-step.ts``, ``createJob``): a batch Job
    ``<runner-pod>-step-<8>`` whose pod has the step's container, the step's environment in a
    Secret ``<runner-pod>-secret-<8>`` (``envFrom``), merged with the same template;

* hook **0.8** (tag ``v0.8.1``, container mode ``kubernetes-novolume``):

  * ``prepare-job`` (``createJobPod``): the job pod with an ``fs-init`` init container (the
    runner image from ``ACTIONS_RUNNER_IMAGE``), ``fsGroup: 1001``, emptyDir volumes and **no
    node**: the scheduler places it (the template's volumes' node affinity decides where);
  * ``run-container-step`` (``createContainerStepPod``): a bare pod ``<runner-pod>-step-<8>``.

The pods and the merge are NOT written here: they are the policy pack's model,
:mod:`policy.arc_policy.hook_merge` (:class:`~policy.arc_policy.hook_merge.HookVersion`:
``job_pod``, ``step_pod``; ``step_job``), so the pods this double sends to the API server are
exactly the ones the policy pack checks.

"The runner pod's view" is: the runner pod's service account (a token bound to the pod,
from the TokenRequest API: the same identity as the pod's projected token, under the
``<scale-set>-gha-rs-kube-mode`` Role the chart grants), its namespace and node, the hook
environment of its ``runner`` container, and the template FILE: read from the kubelet's
volume directory of the runner pod when it runs on the local node, else (the pod is not
running yet) from the ConfigMap the pod mounts at that path, as the kubelet would project it.

What the hooks do over ``pods/exec`` cannot be done here: the local node's kubelet serves no
exec/attach/port-forward streams on loopback. So the step scripts are not exec'd into the pods
(tests give a job container its script as entry point; a 0.8 step pod, whose container the
hook starts as ``tail -f /dev/null`` and then execs the step in, gets the step's entry point,
arguments and environment as its container's command and env instead), and hook 0.8's copy
of the workspace into the pods (``execCpToPod``: ``tar`` over exec) does not happen: its
``/__w`` stays the empty emptyDir ``fs-init`` prepared. Not covered either: ``cleanup-job``,
private-registry pull secrets.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from lightkube import Client, KubeConfig
from lightkube.models.authentication_v1 import BoundObjectReference, TokenRequestSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import ConfigMap, Pod, Secret, ServiceAccount

from components.constants import (
    ENV_CLAIM_NAME,
    ENV_CONTAINER_HOOK_TEMPLATE,
    ENV_CONTAINER_HOOKS,
    ENV_IMAGE,
    ENV_POD_NAME,
    ENV_USE_KUBE_SCHEDULER,
)
from policy.arc_policy.hook_merge import (
    DEFAULT_WORKSPACE,
    HOOK_0_7,
    HOOK_JOB_CONTAINER,
    HOOK_VERSIONS,
    HookVersion,
    RunnerContext,
    WorkflowContainer,
    hook_version,
    step_job,
    step_pod_name,
)

__all__ = [
    "RunnerView",
    "prepare_job",
    "run_container_step",
    "runner_view",
]

WORKSPACE_ENV: Final = "GITHUB_WORKSPACE"
RUNNER_CONTAINER: Final = "runner"
_MAX_POD_NAME: Final = 63
_SUFFIX: Final = 8
#: 0.7 ``run-container-step``: container actions start in the workspace.
_STEP_WORKING_DIR: Final = "/github/workspace"

JsonDict = dict[str, Any]


def _d(obj: Any) -> JsonDict:
    data: JsonDict = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    return data


@dataclass
class RunnerView:
    """What the hook process inside a runner pod sees."""

    namespace: str
    runner_pod: str
    node_name: str
    env: dict[str, str]
    template: JsonDict | None
    template_source: str
    client: Client

    @property
    def use_kube_scheduler(self) -> bool:
        """``ACTIONS_RUNNER_USE_KUBE_SCHEDULER=true`` (``useKubeScheduler()``)."""
        return self.env.get(ENV_USE_KUBE_SCHEDULER, "").lower() == "true"

    @property
    def hook(self) -> HookVersion:
        """The hook ``ACTIONS_RUNNER_CONTAINER_HOOKS`` selects (0.7 or 0.8)."""
        entry_point = self.env.get(ENV_CONTAINER_HOOKS)
        hook = hook_version(entry_point)
        if hook is None:
            shipped = ", ".join(h.entry_point for h in HOOK_VERSIONS)
            raise RuntimeError(
                f"runner pod {self.runner_pod}: {ENV_CONTAINER_HOOKS}={entry_point!r} is not a "
                f"hook the runner image ships ({shipped})"
            )
        return hook

    def context(self, workspace: str | None = None) -> RunnerContext:
        """What the hook reads from its pod and environment, as the model takes it."""
        return RunnerContext(
            pod_name=self.runner_pod,
            node_name=self.node_name,
            claim_name=self.env.get(ENV_CLAIM_NAME),
            use_kube_scheduler=self.use_kube_scheduler,
            runner_image=self.env.get(ENV_IMAGE),
            workspace=workspace or self.env.get(WORKSPACE_ENV) or DEFAULT_WORKSPACE,
        )


def _pod_client(server: str, ca_file: Path, token: str, namespace: str) -> Client:
    config = KubeConfig.from_dict(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "in-cluster",
                    "cluster": {"server": server, "certificate-authority": str(ca_file)},
                }
            ],
            "users": [{"name": "runner", "user": {"token": token}}],
            "contexts": [
                {
                    "name": "runner",
                    "context": {"cluster": "in-cluster", "user": "runner", "namespace": namespace},
                }
            ],
            "current-context": "runner",
        }
    )
    return Client(config=config, namespace=namespace, field_manager="runner-container-hooks")


def _template_text(
    harness: Client, pod: JsonDict, path: str, kubelet_root: Path | None
) -> tuple[str | None, str]:
    """The template file's text and where it was read from."""
    container = next(c for c in pod["spec"]["containers"] if c["name"] == RUNNER_CONTAINER)
    for mount in container.get("volumeMounts") or []:
        mount_path = mount["mountPath"].rstrip("/")
        if not path.startswith(mount_path + "/") or mount.get("subPath"):
            continue
        relative = path[len(mount_path) + 1 :]
        volume = next(v for v in pod["spec"]["volumes"] if v["name"] == mount["name"])
        if kubelet_root is not None:
            on_node = (
                kubelet_root / "pods" / pod["metadata"]["uid"] / "volumes"
                / "kubernetes.io~configmap" / mount["name"] / relative
            )  # fmt: skip
            if on_node.is_file():
                return on_node.read_text(), f"file {on_node} (the runner pod's volume)"
        source = volume.get("configMap")
        if source is not None:
            cm = _d(harness.get(ConfigMap, source["name"], namespace=pod["metadata"]["namespace"]))
            key = relative
            for item in source.get("items") or []:
                if item.get("path") == relative:
                    key = item["key"]
            text = (cm.get("data") or {}).get(key)
            return text, f"ConfigMap {source['name']} key {key} (mounted at {mount_path})"
    return None, f"{path} is not on a ConfigMap volume of the runner container"


def runner_view(
    harness: Client,
    namespace: str,
    runner_pod: str,
    *,
    server: str,
    ca_file: Path,
    kubelet_root: Path | None = None,
) -> RunnerView:
    """The view of the hook in ``runner_pod`` (see the module docstring).

    ``harness`` only reads the pod and requests the token; everything the hook does goes
    through the returned view's client, as the pod's service account.
    """
    pod = _d(harness.get(Pod, runner_pod, namespace=namespace))
    container = next(c for c in pod["spec"]["containers"] if c["name"] == RUNNER_CONTAINER)
    env = {
        e["name"]: e["value"] for e in container.get("env") or [] if isinstance(e.get("value"), str)
    }
    env.setdefault(ENV_POD_NAME, runner_pod)
    service_account = pod["spec"].get("serviceAccountName") or "default"
    request = ServiceAccount.Token(
        metadata=ObjectMeta(name=service_account, namespace=namespace),
        spec=TokenRequestSpec(
            audiences=[],
            expirationSeconds=3600,
            boundObjectRef=BoundObjectReference(
                apiVersion="v1", kind="Pod", name=runner_pod, uid=pod["metadata"]["uid"]
            ),
        ),
    )
    answer: Any = harness.create(request, service_account, namespace=namespace)
    token = str(answer.status.token)
    template: JsonDict | None = None
    source = f"no {ENV_CONTAINER_HOOK_TEMPLATE}"
    path = env.get(ENV_CONTAINER_HOOK_TEMPLATE)
    if path:
        text, source = _template_text(harness, pod, path, kubelet_root)
        if text is None:
            raise FileNotFoundError(f"hook template {path}: {source}")
        template = yaml.safe_load(text)  # readExtensionFromFile: YAML
    return RunnerView(
        namespace=namespace,
        runner_pod=runner_pod,
        node_name=pod["spec"].get("nodeName") or "",
        env=env,
        template=template,
        template_source=source,
        client=_pod_client(server, ca_file, token, namespace),
    )


def prepare_job(
    view: RunnerView,
    *,
    image: str,
    entry_point: str | None = None,
    entry_point_args: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    services: Sequence[str | Mapping[str, Any]] = (),
) -> JsonDict:
    """``prepare-job``: create the job pod of the runner's hook (model: ``hook.job_pod``).

    Hook 0.7 needs the runner's node (``getCurrentNodeName``) unless the scheduler places the
    pod; hook 0.8 never pins its job pod.
    """
    hook = view.hook
    if hook is HOOK_0_7 and not view.node_name and not view.use_kube_scheduler:
        raise RuntimeError(f"runner pod {view.runner_pod} has no node yet (getCurrentNodeName)")
    job = WorkflowContainer(
        image=image,
        env=dict(env or {}),
        entry_point=entry_point,
        entry_point_args=tuple(entry_point_args or ()),
    )
    pod = hook.job_pod(
        view.template, job, [WorkflowContainer.of(s) for s in services], view.context()
    )
    pod["metadata"]["namespace"] = view.namespace
    created: Any = view.client.create(Pod.from_dict(pod), namespace=view.namespace)  # type: ignore[call-overload]
    return _d(created)


def _suffix() -> str:
    """The hooks' name suffix: the first 8 characters of a fresh uuid."""
    return uuid.uuid1().hex[:_SUFFIX]


def _step_name(runner_pod: str, kind: str) -> str:
    """``getSecretName``: ``<runner-pod>-<kind>-<uuid[:8]>``, 63 at most."""
    keep = _MAX_POD_NAME - (len(f"-{kind}-") + _SUFFIX)
    return f"{runner_pod[:keep]}-{kind}-{_suffix()}"


def _exec_in_place(
    pod: JsonDict,
    entry_point: str | None,
    entry_point_args: Sequence[str] | None,
    env: Mapping[str, str],
) -> None:
    """Run the step as the ``job`` container's command, in place of hook 0.8's exec.

    Hook 0.8 starts the step pod's container with ``tail -f /dev/null`` and execs a script
    with the step's environment and entry point in it (``writeContainerStepScript``,
    ``execPodStep``); the local node serves no exec (module docstring).
    """
    container = next(c for c in pod["spec"]["containers"] if c["name"] == HOOK_JOB_CONTAINER)
    if entry_point:
        container["command"] = [entry_point]
        container["args"] = list(entry_point_args or ())
    container["env"] = [
        *(container.get("env") or []),
        *({"name": k, "value": v} for k, v in env.items()),
    ]


def _step_env(env: Mapping[str, str] | None) -> dict[str, str] | None:
    """The step's environment as both hooks complete it (``GITHUB_ACTIONS``, ``CI``)."""
    if env is None:
        return None
    variables = {**env, "GITHUB_ACTIONS": "true"}
    variables.setdefault("CI", "true")
    return variables


def run_container_step(
    view: RunnerView,
    *,
    image: str,
    entry_point: str | None = None,
    entry_point_args: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    workspace: str = DEFAULT_WORKSPACE,
) -> JsonDict:
    """``run-container-step`` of the runner's hook; returns what it created.

    Hook 0.7: the env Secret, then the batch Job (model: ``step_job``), returned as created.
    Hook 0.8: the step pod (model: ``hook.step_pod``), the step run as its command
    (:func:`_exec_in_place`), returned as created.
    """
    hook = view.hook
    variables = _step_env(env)
    runner = view.context(workspace)
    if hook is not HOOK_0_7:
        pod = hook.step_pod(view.template, WorkflowContainer(image=image), runner)
        pod["metadata"]["name"] = step_pod_name(view.runner_pod, _suffix())
        pod["metadata"]["namespace"] = view.namespace
        _exec_in_place(pod, entry_point, entry_point_args, variables or {})
        created_pod: Any = view.client.create(Pod.from_dict(pod), namespace=view.namespace)  # type: ignore[call-overload]
        return _d(created_pod)
    secret_name: str | None = None
    if variables is not None:
        secret_name = _step_name(view.runner_pod, "secret")
        view.client.create(  # type: ignore[call-overload]
            Secret.from_dict(
                {
                    "metadata": {"name": secret_name, "namespace": view.namespace},
                    "stringData": variables,
                }
            ),
            namespace=view.namespace,
        )
    step = WorkflowContainer(
        image=image,
        working_dir=_STEP_WORKING_DIR,
        entry_point=entry_point,
        entry_point_args=tuple(entry_point_args or ()),
    )
    job = step_job(view.template, step, runner, suffix=_suffix(), secret=secret_name)
    job["metadata"]["namespace"] = view.namespace
    created: Any = view.client.create(Job.from_dict(job), namespace=view.namespace)  # type: ignore[call-overload]
    return _d(created)
