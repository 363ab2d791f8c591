"""RunnerScaleSet: one gha-runner-scale-set release in kubernetes container mode.

The runner pod is built here: :func:`scale_set_values` (pure, plain values in, chart values
out) and the component that feeds it a scale set's config and what the other components
return (controller service account, hook ConfigMap, GHES CA ConfigMap).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import constants as c
from components._kube import chart_args
from components.config import ChartRef, ImagesConfig, ScaleSetConfig
from components.hook_template import (
    listener_template,
    mirror_image,
    restricted_security_context,
    runner_pod_security_context,
)

__all__ = ["RunnerScaleSet", "RunnerScaleSetArgs", "cleanup_protected_objects", "scale_set_values"]


def cleanup_protected_objects(scale_set: str, namespace: str) -> list[str]:
    """The objects the chart gives the cleanup-protection finalizer, as depends-on references.

    In the kubernetes modes, with the program's values (no ``template.spec.serviceAccountName``,
    ``githubConfigSecret`` the name of a Secret made elsewhere): the kube-mode ServiceAccount,
    Role and RoleBinding and the manager Role and RoleBinding (0.14.2
    ``kube_mode_serviceaccount.yaml``, ``kube_mode_role(_binding).yaml``,
    ``manager_role(_binding).yaml``). Each keeps its finalizer until the controller has
    cleaned up the deleted AutoscalingRunnerSet.
    """
    fullname = c.scale_set_chart_fullname(scale_set)
    kube_mode, manager = f"{fullname}-kube-mode", f"{fullname}-manager"
    rbac = "rbac.authorization.k8s.io"
    return [
        f"/namespaces/{namespace}/ServiceAccount/{fullname.replace('_', '-')}-kube-mode",
        f"{rbac}/namespaces/{namespace}/Role/{kube_mode}",
        f"{rbac}/namespaces/{namespace}/RoleBinding/{kube_mode}",
        f"{rbac}/namespaces/{namespace}/Role/{manager}",
        f"{rbac}/namespaces/{namespace}/RoleBinding/{manager}",
    ]


def scale_set_values(
    *,
    name: str,
    namespace: str,
    github_config_url: str,
    runner_group: str,
    min_runners: int,
    max_runners: int,
    runner_image: str,
    node: str,
    controller_namespace: str,
    controller_service_account: str,
    hook_config_map: str | None = None,
    work_volume_size: str,
    work_volume_storage_class: str | None,
    image_pull_secrets: Sequence[str] = (),
    github_ca_config_map: str | None = None,
    use_kube_scheduler: bool = False,
    container_mode: str = c.CONTAINER_MODE_KUBERNETES,
) -> dict[str, Any]:
    """Values for the gha-runner-scale-set chart in a kubernetes container mode.

    The stable chart has no hook-template value, so the hook env var, the template ConfigMap
    (mounted as a directory so updates reach running runners) and its mount are added here.
    Credentials are referenced by Secret name only. ``listenerTemplate`` makes the listener
    pod, which the controller starts in its own namespace, admissible there.

    The AutoscalingRunnerSet depends on the objects the chart protects with the
    cleanup-protection finalizer (:func:`cleanup_protected_objects`, through the annotation a
    helm.sh/v4 Chart orders its objects by), so ``pulumi destroy`` deletes it first and
    awaits its cleanup, which lifts their finalizers. Without it the chart's objects are one
    batch: the engine's parallel slots can all hold awaited deletes of protected objects
    while the AutoscalingRunnerSet delete that releases them waits for a slot.

    ``kubernetes`` (hook 0.7): the runner shares its ``work`` claim with the job pod, which
    the hook pins to the runner's node, so the runner is pinned to ``node``, the caches'.
    ``kubernetes-novolume`` (hook 0.8): no work volume; the hook sets no node on the job pod,
    whose clones' node affinity makes the scheduler place it on ``node``: the runner itself
    may run anywhere, and the work volume settings are unused.
    """
    novolume = container_mode == c.CONTAINER_MODE_NOVOLUME
    if novolume and use_kube_scheduler:
        raise ValueError("use_kube_scheduler is a hook 0.7 setting (kubernetes mode only)")
    container_mode_values: dict[str, Any] = {"type": container_mode}
    if not novolume:
        work_claim: dict[str, Any] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": work_volume_size}},
        }
        if work_volume_storage_class:
            work_claim["storageClassName"] = work_volume_storage_class
        container_mode_values["kubernetesModeWorkVolumeClaim"] = work_claim
    env = [
        {
            "name": c.ENV_CONTAINER_HOOKS,
            "value": c.NOVOLUME_HOOK_ENTRYPOINT if novolume else c.HOOK_ENTRYPOINT,
        },
        {"name": c.ENV_CONTAINER_HOOK_TEMPLATE, "value": c.HOOK_TEMPLATE_FILE},
        {"name": c.ENV_REQUIRE_JOB_CONTAINER, "value": "true"},
    ]
    if use_kube_scheduler:
        env.append({"name": c.ENV_USE_KUBE_SCHEDULER, "value": "true"})
    if github_ca_config_map:
        env += [
            # run.sh runs `sudo update-ca-certificates` when this is non-empty, which fails
            # under allowPrivilegeEscalation: false; the chart adds "1" unless it is set.
            {"name": "RUNNER_UPDATE_CA_CERTS", "value": ""},
            # The runner (.NET, OpenSSL) reads every directory listed here instead.
            {"name": "SSL_CERT_DIR", "value": f"{c.SYSTEM_CA_DIR}:{c.GITHUB_CA_DIR}"},
        ]
    runner = {
        "name": c.RUNNER_CONTAINER_NAME,
        "image": runner_image,
        "command": ["/home/runner/run.sh"],
        "env": env,
        "securityContext": {
            **restricted_security_context(),
            "runAsUser": c.RUNNER_UID,
            "runAsGroup": c.RUNNER_GID,
        },
        "volumeMounts": [
            {"name": c.HOOK_TEMPLATE_VOLUME, "mountPath": c.HOOK_TEMPLATE_DIR, "readOnly": True}
        ],
    }
    spec: dict[str, Any] = {
        "securityContext": runner_pod_security_context(),
        "containers": [runner],
        "volumes": [
            {
                "name": c.HOOK_TEMPLATE_VOLUME,
                "configMap": {"name": hook_config_map or c.hook_template_name(name)},
            }
        ],
    }
    if not novolume:
        spec = {"nodeSelector": {"kubernetes.io/hostname": node}, **spec}
    if image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": s} for s in image_pull_secrets]
    values: dict[str, Any] = {
        "githubConfigUrl": github_config_url,
        "githubConfigSecret": c.GITHUB_SECRET_NAME,
        "runnerScaleSetName": name,
        "runnerGroup": runner_group,
        "minRunners": min_runners,
        "maxRunners": max_runners,
        "controllerServiceAccount": {
            "namespace": controller_namespace,
            "name": controller_service_account,
        },
        "containerMode": container_mode_values,
        "template": {
            "metadata": {"labels": {c.LABEL_SCALE_SET: name, c.LABEL_PART_OF: c.PART_OF}},
            "spec": spec,
        },
        "listenerTemplate": listener_template(),
        "resourceMeta": {
            "autoscalingRunnerSet": {
                "annotations": {
                    c.ANNOTATION_DEPENDS_ON: ",".join(cleanup_protected_objects(name, namespace))
                }
            }
        },
    }
    if github_ca_config_map:
        values["githubServerTLS"] = {
            "certificateFrom": {
                "configMapKeyRef": {"name": github_ca_config_map, "key": c.GITHUB_CA_KEY}
            },
            "runnerMountPath": c.GITHUB_CA_DIR,
        }
    return values


@dataclass(frozen=True, slots=True)
class RunnerScaleSetArgs:
    """Inputs of :class:`RunnerScaleSet`: the scale set's config and what it runs against.

    The names come from the components that create those objects (the controller's service
    account, the hook ConfigMap, the GHES CA ConfigMap when there is one), so the values never
    name an object nobody made. Ordering is ``depends_on``: a chart's objects do not wait for
    the inputs of its values.
    """

    name: str
    config: ScaleSetConfig
    chart: ChartRef
    images: ImagesConfig
    github_config_url: str
    node: str
    controller_namespace: pulumi.Input[str]
    controller_service_account: pulumi.Input[str]
    hook_config_map: pulumi.Input[str]
    github_ca_config_map: pulumi.Input[str] | None = None
    depends_on: Sequence[pulumi.Resource] = ()


class RunnerScaleSet(pulumi.ComponentResource):
    """An AutoscalingRunnerSet whose runners are pinned to the node of their caches."""

    scale_set_name: pulumi.Output[str]
    values: pulumi.Output[dict[str, Any]]

    def __init__(
        self, name: str, args: RunnerScaleSetArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("arc-zfs-cache:runners:RunnerScaleSet", name, None, opts)
        cfg = args.config

        def render(names: list[Any]) -> dict[str, Any]:
            controller_namespace, service_account, hook_config_map, ca_config_map = names
            return scale_set_values(
                name=args.name,
                namespace=cfg.namespace,
                github_config_url=args.github_config_url,
                runner_group=cfg.runner_group,
                min_runners=cfg.min_runners,
                max_runners=cfg.max_runners,
                runner_image=mirror_image(cfg.runner_image, args.images.registry),
                node=args.node,
                controller_namespace=controller_namespace,
                controller_service_account=service_account,
                hook_config_map=hook_config_map,
                work_volume_size=cfg.work_volume.size,
                work_volume_storage_class=cfg.work_volume.storage_class,
                image_pull_secrets=args.images.pull_secrets,
                github_ca_config_map=ca_config_map,
                use_kube_scheduler=cfg.use_kube_scheduler,
                container_mode=cfg.container_mode,
            )

        self.values = pulumi.Output.all(
            args.controller_namespace,
            args.controller_service_account,
            args.hook_config_map,
            args.github_ca_config_map,
        ).apply(render)
        self.chart = k8s.helm.v4.Chart(
            f"{name}-chart",
            chart_args(args.chart, release=args.name, namespace=cfg.namespace, values=self.values),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.scale_set_name = pulumi.Output.from_input(args.name)
        self.register_outputs({"scale_set_name": self.scale_set_name})
