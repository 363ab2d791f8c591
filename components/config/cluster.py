"""Config of the target cluster, the image mirror and the ARC controller release."""

from __future__ import annotations

from pydantic import Field

from components import constants as c
from components.config.base import ChartRef, ConfigModel
from components.config.scalars import DnsLabel

__all__ = ["ArcControllerConfig", "ClusterConfig", "ImagesConfig"]


class ClusterConfig(ConfigModel):
    """Which cluster the explicit Kubernetes provider targets."""

    kubeconfig: str | None = Field(
        description="kubeconfig path (default: $KUBECONFIG or ~/.kube/config)",
        default=None,
        examples=["~/.kube/config"],
    )
    context: str | None = Field(
        description="kubeconfig context (default: the current context)",
        default=None,
        examples=["prod-admin@ci-cluster"],
    )


class ImagesConfig(ConfigModel):
    """Image registry mirror and pull secrets used by every chart."""

    registry: str | None = Field(
        description="mirror registry every image is rewritten to (ghcr.io/a/b → <registry>/a/b)",
        default=None,
        examples=["registry.example.com/mirror"],
    )
    pull_secrets: list[DnsLabel] = Field(
        description="image pull Secrets (by name) for every pod",
        default_factory=list,
        examples=[["mirror-pull"]],
    )


class ArcControllerConfig(ConfigModel):
    """The gha-runner-scale-set-controller release."""

    install: bool = Field(
        default=True, description="install the controller chart (false: one is already installed)"
    )
    namespace: DnsLabel = Field(
        default="arc-systems", description="namespace of the ARC controller"
    )
    release_name: DnsLabel = Field(
        default="arc", description="Helm release name of the controller (names its service account)"
    )
    chart: ChartRef = Field(
        default=ChartRef(chart=c.ARC_CONTROLLER_CHART, version=c.ARC_CONTROLLER_CHART_VERSION),
        description="the gha-runner-scale-set-controller chart",
    )
    scale_set_chart: ChartRef = Field(
        default=ChartRef(chart=c.ARC_SCALE_SET_CHART, version=c.ARC_SCALE_SET_CHART_VERSION),
        description="the gha-runner-scale-set chart used by every scale set",
    )
    replicas: int = Field(description="controller replicas", default=1, ge=1, le=3)
