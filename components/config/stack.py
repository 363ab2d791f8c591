"""The whole stack config: every section, checked against each other by :mod:`.rules`."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from components.config.base import ConfigModel
from components.config.caches import CacheConfig
from components.config.cluster import ArcControllerConfig, ClusterConfig, ImagesConfig
from components.config.errors import ConfigError
from components.config.github import GithubConfig
from components.config.rules import cross_reference_problems
from components.config.scalars import DnsLabel
from components.config.scale_sets import PodSecurityConfig, ScaleSetConfig
from components.config.storage import StorageConfig

__all__ = ["StackConfig"]


class StackConfig(ConfigModel):
    """The whole stack configuration (the ``arc-zfs-cache:*`` keys of ``Pulumi.<stack>.yaml``)."""

    cluster: ClusterConfig = Field(default=ClusterConfig(), description="target cluster")
    images: ImagesConfig = Field(default=ImagesConfig(), description="image registry mirror")
    storage: StorageConfig = Field(
        default=StorageConfig(), description="OpenEBS ZFS LocalPV and classes"
    )
    controller: ArcControllerConfig = Field(
        default=ArcControllerConfig(), description="ARC controller and chart references"
    )
    github: GithubConfig = Field(description="GitHub URL and credentials")
    caches: dict[DnsLabel, CacheConfig] = Field(description="build caches by name", min_length=1)
    scale_sets: dict[DnsLabel, ScaleSetConfig] = Field(
        description="runner scale sets by name", min_length=1
    )

    @model_validator(mode="after")
    def _cross_references(self) -> Self:
        problems = cross_reference_problems(self.caches, self.scale_sets)
        if problems:
            raise ConfigError(problems)
        return self

    def node_of(self, scale_set: ScaleSetConfig) -> str:
        """The node a scale set's runners are pinned to: the node of its caches."""
        names = [m.cache for m in scale_set.caches] + (
            [scale_set.builds] if scale_set.builds else []
        )
        return self.caches[names[0]].node if names else str(scale_set.node)

    def github_url_of(self, scale_set: ScaleSetConfig) -> str:
        """The githubConfigUrl a scale set registers at."""
        return scale_set.github_config_url or self.github.url

    def namespace_pod_security(self) -> dict[str, PodSecurityConfig]:
        """The Pod Security level each runner or cache namespace enforces, by namespace.

        A namespace enforces one level for every pod in it, so it takes the least strict one
        its scale sets ask for: ``baseline`` (with the reason of the first scale set asking
        for it, in config order) as soon as one does, else ``restricted``. A namespace that
        holds only caches runs no pod of this program (claims and snapshots only) and is
        ``restricted``, whatever the scale sets elsewhere ask for.
        """
        levels: dict[str, PodSecurityConfig] = {
            cache.namespace: PodSecurityConfig() for cache in self.caches.values()
        }
        for scale_set in self.scale_sets.values():
            current = levels.get(scale_set.namespace)
            if current is None or current.level == "restricted":
                levels[scale_set.namespace] = scale_set.pod_security
        return dict(sorted(levels.items()))
