"""Pure rules of the storage simulator: quantities, names, size checks and dataset lineage.

Nothing here talks to an API server, so every rule the simulator enforces can be unit-tested
on its own. The rules follow the upstream components the simulator stands in for (the CSI
external-provisioner and snapshotter sidecars, the snapshot controller and the OpenEBS
ZFS LocalPV controller and node agent); where a rule is a simplification it says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any, Final

from components.constants import OPENEBS_SOURCE_VOLUME_LABEL

__all__ = [
    "CAS_TYPE",
    "CAS_TYPE_KEY",
    "PERSISTENT_VOLUME_LABEL",
    "POOL_NAME_KEY",
    "SNAPSHOT_CONTENT_FINALIZER",
    "SNAPSHOT_FINALIZER",
    "TOPOLOGY_KEY",
    "ZFS_FINALIZER",
    "DatasetGraph",
    "QuantityError",
    "ZfsDataset",
    "clone_size_error",
    "format_quantity",
    "parse_quantity",
    "pv_name",
    "rounded_capacity",
    "snapshot_content_name",
    "snapshot_handle",
    "zfs_snapshot_name",
]

# OpenEBS ZFS LocalPV facts the simulator needs and the program does not (yet); if the
# program ever needs one, it belongs in components/constants.py and should be imported here.
#: Finalizer the OpenEBS node agent keeps on a ZFSVolume/ZFSSnapshot until the dataset is gone.
ZFS_FINALIZER: Final = "zfs.openebs.io/finalizer"
#: Label on a ZFSSnapshot naming the volume (PV) it is a snapshot of.
PERSISTENT_VOLUME_LABEL: Final = "openebs.io/persistent-volume"
#: Topology key in the nodeAffinity of the PVs the driver provisions.
TOPOLOGY_KEY: Final = "openebs.io/nodeid"
#: Volume attributes the driver returns for a provisioned volume.
POOL_NAME_KEY: Final = "openebs.io/poolname"
CAS_TYPE_KEY: Final = "openebs.io/cas-type"
CAS_TYPE: Final = "localpv-zfs"
#: Finalizers of the snapshot controller (external-snapshotter).
SNAPSHOT_FINALIZER: Final = "snapshot.storage.kubernetes.io/volumesnapshot-bound-protection"
SNAPSHOT_CONTENT_FINALIZER: Final = (
    "snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection"
)

_KI = 1024
_MI = _KI**2
_GI = _KI**3

_SUFFIXES: Final[Mapping[str, Decimal]] = {
    "": Decimal(1),
    "Ki": Decimal(_KI),
    "Mi": Decimal(_MI),
    "Gi": Decimal(_GI),
    "Ti": Decimal(_KI**4),
    "Pi": Decimal(_KI**5),
    "Ei": Decimal(_KI**6),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
}
_QUANTITY = re.compile(
    r"^(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE](?P<exp>[+-]?\d+))?$"
)


class QuantityError(ValueError):
    """A string that is not a Kubernetes resource quantity."""


def parse_quantity(value: str | int) -> int:
    """Bytes of a Kubernetes quantity, rounded up to a whole byte as the API server does.

    Exact (decimal arithmetic): ``10Gi``, ``10240Mi`` and ``10737418240`` are all equal,
    which is what the clone size rule compares.
    """
    if isinstance(value, int):
        return value
    match = _QUANTITY.match(value.strip())
    if match is None:
        raise QuantityError(f"{value!r} is not a Kubernetes quantity (e.g. 10Gi)")
    try:
        number = Decimal(match["num"])
    except InvalidOperation as exc:  # pragma: no cover - the regex only lets numbers through
        raise QuantityError(f"{value!r} is not a Kubernetes quantity") from exc
    if match["exp"] is not None:
        number = number.scaleb(int(match["exp"]))
    else:
        number *= _SUFFIXES[match["suffix"] or ""]
    return int(number.to_integral_value(rounding=ROUND_CEILING))


def format_quantity(size: int) -> str:
    """Canonical binary-SI form of a byte count (``10737418240`` -> ``10Gi``).

    This is how the API server serialises quantities the controllers build from byte
    counts, e.g. a VolumeSnapshot's ``status.restoreSize``.
    """
    for suffix, factor in (("Ei", _KI**6), ("Pi", _KI**5), ("Ti", _KI**4), ("Gi", _GI)):
        if size and size % factor == 0:
            return f"{size // factor}{suffix}"
    for suffix, factor in (("Mi", _MI), ("Ki", _KI)):
        if size and size % factor == 0:
            return f"{size // factor}{suffix}"
    return str(size)


def rounded_capacity(size: int) -> int:
    """The size the OpenEBS ZFS driver provisions for a request of ``size`` bytes.

    The driver rounds up to whole GiB above 1 GiB and to whole MiB below, and stores the
    result as the ZFSVolume's ``spec.capacity``; clone and restore checks compare that.
    """
    if size > _GI:
        return -(-size // _GI) * _GI
    return -(-size // _MI) * _MI


def clone_size_error(kind: str, requested: int, source_capacity: int) -> str | None:
    """The driver's refusal for a clone/restore whose size differs from its source, or None.

    ``kind`` is ``"PersistentVolumeClaim"`` (a volume clone) or ``"VolumeSnapshot"``
    (a restore); the messages are the driver's own. ZFS clones share blocks with their
    origin, so OpenEBS accepts exactly the source capacity and nothing else.
    """
    if rounded_capacity(requested) == source_capacity:
        return None
    if kind == "PersistentVolumeClaim":
        return "clone: volume size is not matching"
    return "clone volume size is not matching"


def pv_name(claim_uid: str) -> str:
    """Name (and CSI volume handle, and ZFSVolume name) of the volume provisioned for a claim."""
    return f"pvc-{claim_uid}"


def zfs_snapshot_name(snapshot_uid: str) -> str:
    """Name of the CSI snapshot (ZFSSnapshot object) taken for a VolumeSnapshot."""
    return f"snapshot-{snapshot_uid}"


def snapshot_content_name(snapshot_uid: str) -> str:
    """Name of the VolumeSnapshotContent the snapshot controller creates for a VolumeSnapshot."""
    return f"snapcontent-{snapshot_uid}"


def snapshot_handle(volume: str, snapshot: str) -> str:
    """CSI snapshot id of ZFS snapshot ``snapshot`` of ``volume``: ``<volume>@<snapshot>``."""
    return f"{volume}@{snapshot}"


@dataclass(frozen=True, slots=True)
class ZfsDataset:
    """The simulator's view of one ZFS object, read back from its ZFSVolume/ZFSSnapshot.

    ``origin`` is the ``<volume>@<snapshot>`` a clone was made from (``spec.snapname``);
    ``snapshot_of`` is the volume a snapshot belongs to. Everything lives in the objects,
    so a restarted simulator recovers the lineage by listing them.
    """

    name: str
    kind: str  # "volume" or "snapshot"
    origin: str | None = None
    snapshot_of: str | None = None
    deleting: bool = False

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> ZfsDataset:
        """Read a ZFSVolume or ZFSSnapshot object (as a dict)."""
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        deleting = meta.get("deletionTimestamp") is not None
        if obj.get("kind") == "ZFSSnapshot":
            return cls(
                name=meta["name"],
                kind="snapshot",
                snapshot_of=labels.get(PERSISTENT_VOLUME_LABEL),
                deleting=deleting,
            )
        spec = obj.get("spec") or {}
        origin = spec.get("snapname") or None
        if origin is None and labels.get(OPENEBS_SOURCE_VOLUME_LABEL):
            # A clone whose snapname was lost still depends on its source volume.
            origin = snapshot_handle(labels[OPENEBS_SOURCE_VOLUME_LABEL], meta["name"])
        return cls(name=meta["name"], kind="volume", origin=origin, deleting=deleting)


class DatasetGraph:
    """Parent/child relations between ZFS volumes, snapshots and clones.

    ZFS refuses to destroy a dataset that still has snapshots, or a snapshot that still has
    clones (OpenEBS has no ``zfs promote``): :meth:`dependents` lists what blocks a destroy.
    A PVC->PVC clone's origin snapshot ``<src>@<clone>`` exists only inside ZFS (no
    ZFSSnapshot object), so the clone itself is a dependent of its source volume.
    """

    def __init__(self, datasets: Iterable[ZfsDataset]) -> None:
        self._volumes: dict[str, ZfsDataset] = {}
        self._snapshots: dict[str, ZfsDataset] = {}
        for dataset in datasets:
            target = self._volumes if dataset.kind == "volume" else self._snapshots
            target[dataset.name] = dataset

    def volume_dependents(self, volume: str) -> list[str]:
        """Names of the snapshots and clones that keep ``volume`` from being destroyed."""
        found = [
            f"ZFSSnapshot/{snap.name}"
            for snap in self._snapshots.values()
            if snap.snapshot_of == volume
        ]
        found += [
            f"ZFSVolume/{vol.name}"
            for vol in self._volumes.values()
            if vol.name != volume and vol.origin and vol.origin.split("@", 1)[0] == volume
        ]
        return sorted(found)

    def snapshot_dependents(self, snapshot: str) -> list[str]:
        """Names of the clones (restored volumes) that keep ZFS snapshot ``snapshot`` alive."""
        snap = self._snapshots.get(snapshot)
        if snap is None or snap.snapshot_of is None:
            return []
        origin = snapshot_handle(snap.snapshot_of, snapshot)
        return sorted(
            f"ZFSVolume/{vol.name}" for vol in self._volumes.values() if vol.origin == origin
        )

    def dependents(self, kind: str, name: str) -> list[str]:
        """What blocks destroying ZFSVolume (``kind="volume"``) or ZFSSnapshot ``name``."""
        if kind == "volume":
            return self.volume_dependents(name)
        return self.snapshot_dependents(name)
