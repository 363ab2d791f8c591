"""The Node service's decisions, apart from its I/O: mount table, topology, the publish check.

Pure functions (no gRPC, no ``zfs``, no API), so the unit tier tests them in milliseconds;
:mod:`localcluster.zfs_csi.node_service` does the I/O around them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from components.constants import OPENEBS_NODE_TOPOLOGY_KEY

__all__ = [
    "OPENEBS_NODENAME_TOPOLOGY_KEY",
    "Mount",
    "PublishRefusedError",
    "dataset_mounts",
    "mounts_under",
    "node_topology",
    "parse_mountinfo",
    "publish_needed",
]

#: upstream ZFSTopoNodenameKey (pkg/zfs/volume.go): the older key, kept for Velero.
OPENEBS_NODENAME_TOPOLOGY_KEY: Final = "openebs.io/nodename"


@dataclass(frozen=True, slots=True)
class Mount:
    """One line of ``/proc/self/mountinfo``: where, what (the source), which filesystem."""

    point: str
    source: str
    fstype: str


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal.
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts of a ``/proc/<pid>/mountinfo`` text, in mount order."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        dash = fields.index("-")
        if len(fields) < dash + 3 or dash < 5:
            continue
        mounts.append(
            Mount(
                point=_unescape(fields[4]),
                source=_unescape(fields[dash + 2]),
                fstype=fields[dash + 1],
            )
        )
    return mounts


def mounts_under(mounts: Iterable[Mount], root: Path) -> list[str]:
    """Mount points at or below ``root``, deepest (latest) first, as they must be unmounted."""
    prefix = str(root)
    points = [m.point for m in mounts if m.point == prefix or m.point.startswith(prefix + "/")]
    return list(reversed(points))


def dataset_mounts(mounts: Iterable[Mount], dataset: str, own_mountpoint: str) -> list[str]:
    """Where ``dataset`` is mounted besides its own mountpoint: its bind mounts into pods.

    upstream ``mnt.GetMounts(devicePath)`` lists the mounts whose source is the dataset;
    here the dataset is also mounted at its ZFS mountpoint (zfs-fuse has no legacy mounts),
    which is not a publication.
    """
    return [m.point for m in mounts if m.source == dataset and m.point != own_mountpoint]


class PublishRefusedError(Exception):
    """upstream verifyMountRequest's refusal; the message is upstream's."""


def publish_needed(
    *,
    target: str,
    owner_node: str,
    node_id: str,
    ready: bool,
    shared: bool,
    current: list[str],
) -> bool:
    """upstream verifyMountRequest (pkg/zfs/mount.go): False if ``target`` is already a
    mount of the volume, True if it must be mounted; PublishRefusedError otherwise."""
    if not target:
        raise PublishRefusedError("verifyMount: mount path missing in request")
    if owner_node and owner_node != node_id:
        raise PublishRefusedError("verifyMount: volume is owned by different node")
    if not ready:
        raise PublishRefusedError("verifyMount: volume is not ready to be mounted")
    if target in current:
        return False
    # "The Wall of North": one mount at a time unless the volume is shared.
    if current and not shared:
        raise PublishRefusedError(f"verifyMount: device already mounted at [{' '.join(current)}]")
    return True


def node_topology(labels: Mapping[str, str], node_id: str) -> dict[str, str]:
    """upstream NodeGetInfo with the chart's ``allowedTopologyKeys: All``: every label of the
    node, the driver's key (unless a label sets it) and the older nodename key."""
    topology = dict(labels)
    topology.setdefault(OPENEBS_NODE_TOPOLOGY_KEY, node_id)
    topology[OPENEBS_NODENAME_TOPOLOGY_KEY] = node_id
    return topology
