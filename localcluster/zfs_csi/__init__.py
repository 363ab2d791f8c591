"""The local cluster's test double of the OpenEBS ZFS LocalPV CSI driver (README.md here).

The names its objects and datasets carry live here, importable without the generated gRPC
code (``localcluster.zfs_csi.generated``), so tests can read them anywhere.
"""

from __future__ import annotations

from typing import Final

__all__ = ["NODE_LABEL", "REQUESTED_COMPRESSION", "ZFS_FINALIZER"]

#: Finalizer the node agent keeps on an object while its dataset or snapshot exists.
ZFS_FINALIZER: Final = "zfs.openebs.io/finalizer"
#: Label the node agent sets on what it made (upstream ZFSNodeKey).
NODE_LABEL: Final = "kubernetes.io/nodename"
#: Where a dataset remembers the compression its StorageClass asked for (zfs-fuse has no lz4).
REQUESTED_COMPRESSION: Final = "arc-zfs-cache:requested-compression"
