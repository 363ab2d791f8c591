"""ArcController: the namespace and the gha-runner-scale-set-controller chart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import constants as c
from components._kube import chart_args, labels
from components.config import ArcControllerConfig, ImagesConfig
from components.hook_template import (
    mirror_image,
    pod_security_labels,
    restricted_security_context,
)

__all__ = ["ArcController", "ArcControllerArgs"]


@dataclass(frozen=True, slots=True)
class ArcControllerArgs:
    """Inputs of :class:`ArcController`."""

    config: ArcControllerConfig
    images: ImagesConfig


class ArcController(pulumi.ComponentResource):
    """The ARC controller that turns AutoscalingRunnerSets into listeners and runner pods."""

    namespace: pulumi.Output[str]
    service_account: pulumi.Output[str]

    def __init__(
        self, name: str, args: ArcControllerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("arc-zfs-cache:controller:ArcController", name, None, opts)
        cfg = args.config
        self.resources: list[pulumi.Resource] = []
        if cfg.install:
            namespace = k8s.core.v1.Namespace(
                f"{name}-namespace",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=cfg.namespace,
                    labels={**labels(), **pod_security_labels("restricted")},
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            chart = k8s.helm.v4.Chart(
                f"{name}-chart",
                chart_args(
                    cfg.chart,
                    release=cfg.release_name,
                    namespace=cfg.namespace,
                    values=self.chart_values(args),
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace]),
            )
            self.resources = [namespace, chart]
        self.namespace = pulumi.Output.from_input(cfg.namespace)
        self.service_account = pulumi.Output.from_input(
            c.controller_service_account_name(cfg.release_name)
        )
        self.register_outputs(
            {"namespace": self.namespace, "service_account": self.service_account}
        )

    @staticmethod
    def chart_values(args: ArcControllerArgs) -> dict[str, Any]:
        """Controller chart values: replicas, mirrored image, pull secrets, pod labels.

        The chart's pod template already sets ``app.kubernetes.io/part-of:
        gha-rs-controller`` (scale-set charts find the controller by it), so ``podLabels``
        must not repeat that key: a duplicate key makes the rendered Deployment invalid YAML.
        The manager container gets the same restricted securityContext as the listener.
        """
        values: dict[str, Any] = {
            "replicaCount": args.config.replicas,
            "podLabels": {c.LABEL_MANAGED_BY: c.MANAGED_BY},
            "image": {
                "repository": mirror_image(c.ARC_CONTROLLER_IMAGE_REPOSITORY, args.images.registry),
                "tag": args.config.chart.version or c.ARC_CONTROLLER_CHART_VERSION,
            },
            "securityContext": restricted_security_context(),
        }
        if args.images.pull_secrets:
            values["imagePullSecrets"] = [{"name": s} for s in args.images.pull_secrets]
        return values
