"""The local cluster's test double of the OpenEBS ZFS LocalPV CSI driver (README.md here).

The names its objects and datasets carry live here, importable without the generated gRPC
code (``localcluster.zfs_csi.generated``), so tests can read them anywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

__all__ = ["NODE_LABEL", "REQUESTED_COMPRESSION", "ZFS_FINALIZER", "registration_socket"]

#: Finalizer the node agent keeps on an object while its dataset or snapshot exists.
ZFS_FINALIZER: Final = "zfs.openebs.io/finalizer"
#: Label the node agent sets on what it made (upstream ZFSNodeKey).
NODE_LABEL: Final = "kubernetes.io/nodename"
#: Where a dataset remembers the compression its StorageClass asked for (zfs-fuse has no lz4).
REQUESTED_COMPRESSION: Final = "arc-zfs-cache:requested-compression"


def registration_socket(registry_dir: Path) -> Path:
    """The driver's socket in the kubelet's plugins_registry dir.

    The name the OpenEBS chart's node-driver-registrar uses (deploy/helm/charts/templates/
    zfs-node.yaml removes ``/registration/zfs-localpv-reg.sock`` on stop), shorter than the
    registrar's default ``<driver>-reg.sock``: unix socket paths are short, and the kubelet
    watches any socket in the dir.
    """
    return registry_dir / "zfs-localpv-reg.sock"
