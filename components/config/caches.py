"""Config of one build cache: node, size, mount path and promotion settings."""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from components.config.base import ConfigModel
from components.config.scalars import DnsLabel, Duration, MountPath, Quantity

__all__ = ["CacheConfig", "ImportedDataset"]


class ImportedDataset(ConfigModel):
    """An existing ZFS dataset adopted as the cache's root generation."""

    dataset: str = Field(
        description="existing dataset `<pool>/<path>/<volume>` adopted as generation 1",
        pattern=r"^[A-Za-z0-9_.:-]+(/[A-Za-z0-9_.:-]+)+$",
        examples=["zfspv-pool/gcc12-main"],
    )


class CacheConfig(ConfigModel):
    """One build cache: its node, size, where jobs mount it, and its promotion settings."""

    namespace: DnsLabel = Field(
        description="namespace of the cache's claims (the job pods' namespace)",
        default="arc-runners",
        examples=["arc-runners"],
    )
    node: str = Field(
        description="node that owns the cache's datasets; runners using it are pinned there",
        min_length=1,
        examples=["zfs-node-1"],
    )
    size: Quantity = Field(
        description="capacity of every generation; clones request exactly this", examples=["200Gi"]
    )
    mount_path: MountPath = Field(
        description="where job containers mount the clone", examples=["/CONAN_HOME"]
    )
    env: dict[str, str] = Field(
        description="environment variables set in the `$job` container",
        default_factory=dict,
        examples=[{"CONAN_HOME": "/CONAN_HOME"}],
    )
    import_: ImportedDataset | None = Field(
        description="adopt an existing ZFS dataset instead of starting empty",
        default=None,
        alias="import",
    )
    promote: str | None = Field(
        description="promotion token: a new value promotes the builder volume to a new generation",
        default=None,
        examples=["3f2c9a1"],
    )
    reset_builder: str | None = Field(
        description="reset token: a new value makes a fresh builder volume from the current parent",
        default=None,
        examples=["2026-11-23"],
    )
    lease_duration: Duration = Field(
        description="promotion Lease duration (renewed while working)",
        default=timedelta(minutes=5),
        examples=["5m"],
    )
    grace_period: Duration = Field(
        description="how long a superseded generation is kept before collection (>= 5m)",
        default=timedelta(minutes=15),
        examples=["15m"],
    )
    retention: Duration = Field(
        description="how long an old builder volume is kept for troubleshooting",
        default=timedelta(days=7),
        examples=["7d"],
    )
    ready_timeout: Duration = Field(
        description="how long to wait for a snapshot to be ready or a clone to bind",
        default=timedelta(minutes=5),
        examples=["5m"],
    )

    @model_validator(mode="after")
    def _grace_covers_propagation(self) -> Self:
        # A superseded parent must outlive ConfigMap propagation to every runner pod (about a
        # minute, worst case more) plus the hook's prepare timeout.
        if self.grace_period < timedelta(minutes=5):
            raise PydanticCustomError(
                "grace_period",
                "gracePeriod must be at least 5m so no job still clones a collected parent "
                "(ConfigMap propagation plus the hook's prepare timeout); e.g. 15m",
                {},
            )
        return self
