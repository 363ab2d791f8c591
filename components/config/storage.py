"""Config of OpenEBS ZFS LocalPV, its classes, and the optional zpool preparation over SSH."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from components import constants as c
from components.config.base import ChartRef, ConfigModel
from components.config.scalars import DnsLabel, Secret

__all__ = ["NodePreparation", "SshHost", "StorageConfig"]


_RECORDSIZE = re.compile(r"^(4|8|16|32|64|128|256|512)k$|^1M$")


class SshHost(ConfigModel):
    """How to reach one node over SSH to prepare its ZFS pool."""

    host: str = Field(description="address of the node for SSH", examples=["10.0.0.11"])
    user: str = Field(
        description="SSH user allowed to run zpool/zfs", default="root", examples=["root"]
    )
    port: int = Field(description="SSH port", default=22, ge=1, le=65535, examples=[22])
    devices: list[str] = Field(
        description="block devices for `zpool create` (only used when the pool does not exist)",
        min_length=1,
        examples=[["/dev/nvme1n1"]],
    )


class NodePreparation(ConfigModel):
    """Optional creation of the zpool on each node with pulumi-command over SSH."""

    hosts: dict[str, SshHost] = Field(
        description="nodes to prepare, by Kubernetes node name", min_length=1
    )
    private_key: Secret = Field(
        description="SSH private key (secret)", examples=["<set with --secret>"]
    )


class StorageConfig(ConfigModel):
    """OpenEBS ZFS LocalPV, its storage classes and snapshot class."""

    install: bool = Field(
        default=True,
        description="install the OpenEBS ZFS LocalPV chart (false: use an existing install)",
    )
    chart: ChartRef = Field(
        default=ChartRef(
            chart=c.OPENEBS_ZFS_CHART_NAME,
            repo=c.OPENEBS_ZFS_CHART,
            version=c.OPENEBS_ZFS_CHART_VERSION,
        ),
        description="the zfs-localpv chart",
    )
    namespace: DnsLabel = Field(
        default=c.OPENEBS_NAMESPACE, description="namespace of OpenEBS ZFS LocalPV"
    )
    install_snapshot_crds: bool = Field(
        description="install the VolumeSnapshot CRDs (false when the cluster has them)",
        default=True,
        examples=[False],
    )
    install_snapshot_controller: bool = Field(
        description="run the chart's snapshot-controller (false when the cluster already runs "
        "one: there must be one per cluster)",
        default=True,
        examples=[False],
    )
    pool_name: str = Field(
        description="zpool (or parent dataset) holding every cache dataset",
        default="zfspv-pool",
        pattern=r"^[A-Za-z0-9_.:-]+(/[A-Za-z0-9_.:-]+)*$",
    )
    compression: Literal["off", "lz4", "zstd", "gzip"] = Field(
        default="lz4", description="ZFS compression of cache datasets"
    )
    recordsize: str = Field(
        description="ZFS recordsize of cache datasets",
        default="128k",
        pattern=_RECORDSIZE.pattern,
        examples=["128k"],
    )
    storage_class_prefix: DnsLabel = Field(
        default="arc-zfs",
        description="prefix of the per-node StorageClasses `<prefix>-<node>` holding every "
        "generation, builder volume and job clone of the caches on that node",
        examples=["arc-zfs"],
    )
    snapshot_class: DnsLabel = Field(
        default="arc-zfs-snapshots", description="VolumeSnapshotClass used by promotion"
    )
    node_preparation: NodePreparation | None = Field(
        default=None, description="create the zpool over SSH with pulumi-command (idempotent)"
    )

    def storage_class_for(self, node: str) -> str:
        """The StorageClass of the caches on ``node``."""
        return c.cache_storage_class(self.storage_class_prefix, node)
