"""runner-container-hooks TEST DOUBLE: the job, step and service pods a runner's hook creates.

The hook (``/home/runner/k8s/index.js`` in the runner image) is a Node.js program that cannot
run here (no registry, so no runner image, and no GitHub to hand it a job). This double does
what it does at job start, from the runner pod's view, following
``actions/runner-container-hooks`` tag ``v0.7.0``, ``packages/k8s``:

* ``prepare-job`` (``src/hooks/prepare-job.ts``, ``src/k8s/index.ts`` ``createPod``): the job
  pod ``<runner-pod>-workflow`` with the ``job`` container, one container per workflow
  service, the runner's ``work`` claim, ``nodeName`` of the runner's node (or the required
  node affinity with ``ACTIONS_RUNNER_USE_KUBE_SCHEDULER=true``), merged with the template
  file ``ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE``;
* ``run-container-step`` (``src/hooks/run-container-step.ts``, ``createJob``): a batch Job
  ``<runner-pod>-step-<8>`` (``backoffLimit: 0``, ``ttlSecondsAfterFinished: 300``) whose
  pod has the step's ``job`` container (the container-action mounts of ``containerVolumes``),
  the step's environment in a Secret ``<runner-pod>-secret-<8>`` (``envFrom``), merged with
  the same template (its ``metadata`` into both the Job and its pod template).

The base pods and the merge are NOT written here: they are the policy pack's model,
:mod:`policy.arc_policy.hook_merge` (``base_job_pod``, ``merge_container``, ``merge_job_pod``),
so the pods this double sends to the API server are exactly the ones the policy pack checks. Only
the step Job's container (``run-container-step``'s own ``createContainerSpec``) is built here.

"The runner pod's view" is: the runner pod's service account (a token bound to the pod,
from the TokenRequest API: the same identity as the pod's projected token, under the
``<scale-set>-gha-rs-kube-mode`` Role the chart grants), its namespace and node, the hook
environment of its ``runner`` container, and the template FILE: read from the kubelet's
volume directory of the runner pod when it runs on the local node, else (the pod is not
running yet) from the ConfigMap the pod mounts at that path, as the kubelet would project it.

Not covered: hook 0.8 (``/home/runner/k8s-novolume``: ``fs-init`` init container, workspace
copy, ``fsGroup: 1001``), ``exec`` of the step scripts into the job pod (tests give the job
container its script as entry point), ``cleanup-job``, private-registry pull secrets.
"""

from __future__ import annotations

import copy
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

from policy.arc_policy.hook_merge import (
    HOOK_JOB_CONTAINER,
    RUNNER_POD_LABEL,
    WORK_VOLUME,
    base_job_pod,
    merge_container,
    merge_job_pod,
)

__all__ = [
    "HOOK_TEMPLATE_ENV",
    "RunnerView",
    "prepare_job",
    "run_container_step",
    "runner_view",
]

HOOK_TEMPLATE_ENV: Final = "ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE"
USE_KUBE_SCHEDULER_ENV: Final = "ACTIONS_RUNNER_USE_KUBE_SCHEDULER"
CLAIM_NAME_ENV: Final = "ACTIONS_RUNNER_CLAIM_NAME"
RUNNER_CONTAINER: Final = "runner"
_MAX_POD_NAME: Final = 63
_SUFFIX: Final = 8

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
        return self.env.get(USE_KUBE_SCHEDULER_ENV, "").lower() == "true"


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
    env.setdefault("ACTIONS_RUNNER_POD_NAME", runner_pod)
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
    source = f"no {HOOK_TEMPLATE_ENV}"
    path = env.get(HOOK_TEMPLATE_ENV)
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
    """``prepare-job``: create the job pod (model: ``base_job_pod`` + ``merge_job_pod``)."""
    if not view.node_name and not view.use_kube_scheduler:
        raise RuntimeError(f"runner pod {view.runner_pod} has no node yet (getCurrentNodeName)")
    base = base_job_pod(
        view.runner_pod,
        node_name=view.node_name,
        job_image=image,
        job_env=env,
        entry_point=entry_point,
        entry_point_args=entry_point_args,
        services=services,
        claim_name=view.env.get(CLAIM_NAME_ENV),
        use_kube_scheduler=view.use_kube_scheduler,
    )
    pod = merge_job_pod(base, view.template)
    pod["metadata"]["namespace"] = view.namespace
    created: Any = view.client.create(Pod.from_dict(pod), namespace=view.namespace)  # type: ignore[call-overload]
    return _d(created)


def _step_name(runner_pod: str, kind: str) -> str:
    """``getStepPodName``/``getSecretName``: ``<runner-pod>-<kind>-<uuid[:8]>``, 63 at most."""
    keep = _MAX_POD_NAME - (len(f"-{kind}-") + _SUFFIX)
    return f"{runner_pod[:keep]}-{kind}-{uuid.uuid1().hex[:_SUFFIX]}"


def _step_container(  # noqa: PLR0917 - createContainerSpec's inputs
    image: str,
    workspace: str,
    entry_point: str | None,
    entry_point_args: Sequence[str] | None,
    secret: str | None,
    template: Mapping[str, Any] | None,
) -> JsonDict:
    """``run-container-step``'s ``createContainerSpec`` (container action mounts)."""
    relative = workspace[workspace.rfind("_work/") + len("_work/") :]
    container: JsonDict = {
        "name": HOOK_JOB_CONTAINER,
        "image": image,
        "workingDir": "/github/workspace",
        "volumeMounts": [
            {"name": WORK_VOLUME, "mountPath": "/__w"},
            {"name": WORK_VOLUME, "mountPath": "/github/workspace", "subPath": relative},
            {
                "name": WORK_VOLUME,
                "mountPath": "/github/file_commands",
                "subPath": "_temp/_runner_file_commands",
            },
            {"name": WORK_VOLUME, "mountPath": "/github/home", "subPath": "_temp/_github_home"},
            {
                "name": WORK_VOLUME,
                "mountPath": "/github/workflow",
                "subPath": "_temp/_github_workflow",
            },
        ],
    }
    if entry_point:
        container["command"] = [entry_point]
    if entry_point_args:
        container["args"] = list(entry_point_args)
    if secret:
        container["envFrom"] = [{"secretRef": {"name": secret, "optional": False}}]
    spec = (template or {}).get("spec") or {}
    extension = next(
        (c for c in spec.get("containers") or [] if c.get("name") == f"${HOOK_JOB_CONTAINER}"),
        None,
    )
    return merge_container(container, extension) if extension else container


def run_container_step(
    view: RunnerView,
    *,
    image: str,
    entry_point: str | None = None,
    entry_point_args: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    workspace: str = "/home/runner/_work/repo/repo",
) -> JsonDict:
    """``run-container-step``: the env Secret, then the Job (returned as created)."""
    secret_name: str | None = None
    if env is not None:
        variables = {**env, "GITHUB_ACTIONS": "true"}
        variables.setdefault("CI", "true")
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
    container = _step_container(
        image, workspace, entry_point, entry_point_args, secret_name, view.template
    )
    claim = view.env.get(CLAIM_NAME_ENV) or f"{view.runner_pod}-work"
    pod_spec: JsonDict = {"containers": [container], "restartPolicy": "Never"}
    base = base_job_pod(
        view.runner_pod,
        node_name=view.node_name,
        claim_name=claim,
        use_kube_scheduler=view.use_kube_scheduler,
    )
    for key in ("nodeName", "affinity"):
        if key in base["spec"]:
            pod_spec[key] = base["spec"][key]
    pod_spec["volumes"] = copy.deepcopy(base["spec"]["volumes"])
    # createJob: the template's spec merged into the pod template's spec (mergePodSpecWithOptions)
    # and its metadata into both the Job and the pod template (mergeObjectMeta). The `job`
    # container was merged above; merge_job_pod would merge it a second time, so it gets a
    # template without `$job` entries.
    template = copy.deepcopy(view.template) if view.template else None
    if template is not None and isinstance(template.get("spec"), dict):
        template["spec"]["containers"] = [
            c for c in template["spec"].get("containers") or []
            if c.get("name") != f"${HOOK_JOB_CONTAINER}"
        ]  # fmt: skip
    pod = merge_job_pod({"metadata": {"labels": {}, "annotations": {}}, "spec": pod_spec}, template)
    name = _step_name(view.runner_pod, "step")
    job_meta = merge_job_pod(
        {"metadata": {"labels": {RUNNER_POD_LABEL: view.runner_pod}, "annotations": {}},
         "spec": {}},
        {"metadata": (template or {}).get("metadata") or {}},
    )["metadata"]  # fmt: skip
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {**job_meta, "name": name, "namespace": view.namespace},
        "spec": {
            "ttlSecondsAfterFinished": 300,
            "backoffLimit": 0,
            "template": {"metadata": pod["metadata"], "spec": pod["spec"]},
        },
    }
    created: Any = view.client.create(Job.from_dict(job), namespace=view.namespace)  # type: ignore[call-overload]
    return _d(created)
