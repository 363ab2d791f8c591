"""Config of one runner scale set: its caches, runners, job container and namespace."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BeforeValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from components import constants as c
from components.config.base import ConfigModel
from components.config.scalars import (
    DnsLabel,
    MountPath,
    Quantity,
    ResourceQuantity,
    RunnerImage,
)

__all__ = ["CacheMountConfig", "PodSecurityConfig", "Resources", "ScaleSetConfig", "WorkVolume"]


class Resources(ConfigModel):
    """Container resource requests and limits, as in a PodSpec."""

    requests: dict[Literal["cpu", "memory", "ephemeral-storage"], ResourceQuantity] = Field(
        description="resource requests of the `$job` container",
        default_factory=dict,
        examples=[{"cpu": "250m", "memory": "4Gi"}],
    )
    limits: dict[Literal["cpu", "memory", "ephemeral-storage"], ResourceQuantity] = Field(
        description="resource limits of the `$job` container",
        default_factory=dict,
        examples=[{"memory": "8Gi"}],
    )


class CacheMountConfig(ConfigModel):
    """A cache a scale set's job pods mount as a fresh clone of its current parent (the
    mount itself, resolved from this entry, is :class:`components.hook_template.CacheMount`)."""

    cache: DnsLabel = Field(description="name of a cache under `caches`", examples=["gcc12"])
    mount_path: MountPath | None = Field(
        description="mount path override for this scale set", default=None, examples=["/CONAN_HOME"]
    )
    size: Quantity | None = Field(
        description="must equal the cache's size when given", default=None, examples=["200Gi"]
    )


def _cache_mount(value: object) -> object:
    return {"cache": value} if isinstance(value, str) else value


class WorkVolume(ConfigModel):
    """The runner's `work` ephemeral volume (kubernetes mode), shared with the job pod."""

    storage_class: str | None = Field(
        description="StorageClass of the runner's work volume (default class when unset)",
        default=None,
        examples=["local-path"],
    )
    size: Quantity = Field(
        description="size of the runner's work volume", default="10Gi", examples=["10Gi"]
    )


class PodSecurityConfig(ConfigModel):
    """Pod Security admission level enforced on the runner namespace."""

    level: Literal["restricted", "baseline"] = Field(
        default="restricted", description="Pod Security level enforced on the namespace"
    )
    reason: str | None = Field(
        description="why restricted cannot hold (required for baseline)",
        default=None,
        examples=["runner image needs a writable /etc"],
    )

    @model_validator(mode="after")
    def _reason_for_baseline(self) -> Self:
        if self.level == "baseline" and not self.reason:
            raise PydanticCustomError(
                "pod_security",
                "level baseline needs a `reason` saying why restricted cannot hold",
                {},
            )
        return self


class ScaleSetConfig(ConfigModel):
    """One runner scale set (gha-runner-scale-set release) in a kubernetes container mode."""

    namespace: DnsLabel = Field(
        description="namespace of runner and job pods",
        default="arc-runners",
        examples=["arc-runners"],
    )
    github_config_url: str | None = Field(
        description="register at this URL instead of `github.url`",
        default=None,
        pattern=r"^https://[^/\s]+(/[^/\s]+){1,2}/?$",
        examples=["https://github.com/acme/app"],
    )
    runner_group: str = Field(default="default", description="GitHub runner group")
    min_runners: int = Field(description="idle runners kept warm", default=0, ge=0, examples=[0])
    max_runners: int = Field(
        description="upper bound of runners (1 for a builder)",
        default=5,
        ge=1,
        le=1000,
        examples=[10],
    )
    caches: list[Annotated[CacheMountConfig, BeforeValidator(_cache_mount)]] = Field(
        description="caches cloned into every job pod", default_factory=list, examples=[["gcc12"]]
    )
    builds: DnsLabel | None = Field(
        description="cache whose builder volume this scale set's jobs mount read-write",
        default=None,
        examples=["gcc12"],
    )
    node: str | None = Field(
        description="node of the scale set's caches (must match them); kubernetes mode pins "
        "runners to it",
        default=None,
        examples=["zfs-node-1"],
    )
    runner_image: RunnerImage = Field(
        default=c.RUNNER_IMAGE,
        description="pinned runner image (2.329.0 or newer: it ships runner-container-hooks 0.7 "
        "at /home/runner/k8s)",
    )
    container_mode: c.ContainerMode = Field(
        default=c.CONTAINER_MODE_KUBERNETES,
        description="kubernetes: hook 0.7, a work volume shared with the job pod, runners "
        "pinned to the caches' node; kubernetes-novolume: hook 0.8, no work volume, runners "
        "unpinned (the scheduler places each job pod on its clones' node), needs the "
        "namespace at podSecurity baseline (hook 0.8's fs-init init container)",
        examples=["kubernetes-novolume"],
    )
    use_kube_scheduler: bool = Field(
        default=False,
        description="let the scheduler place job pods (hook 0.7 then uses a required node "
        "affinity to the runner's node instead of spec.nodeName, so quotas, taints and "
        "WaitForFirstConsumer volumes are honoured; kubernetes mode only)",
        examples=[True],
    )
    services: list[DnsLabel] = Field(
        default_factory=list,
        description="workflow service containers (`services:`) this scale set's jobs may use, "
        "by the name the hook gives them (the image's last path part, e.g. redis for "
        "redis:7): each gets the job container's securityContext, without which a restricted "
        "namespace rejects the job pod",
        examples=[["redis", "postgres"]],
    )
    job_resources: Resources = Field(
        default=Resources(), description="requests and limits of the `$job` container"
    )
    work_volume: WorkVolume = Field(default=WorkVolume(), description="the runner's work volume")
    pod_security: PodSecurityConfig = Field(
        default=PodSecurityConfig(), description="Pod Security admission level of the namespace"
    )
