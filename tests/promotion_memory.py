"""An in-memory cluster for promotion's steps: the cluster port, the lease port and a clock.

It behaves as the parts of Kubernetes, the CSI snapshotter and OpenEBS ZFS that promotion
relies on (docs/promotion.md), at once and deterministically: a claim in a known class binds
when its source is there (a PVC clone gets a ZFSVolume labelled with its source volume, a
restore from a snapshot one whose ``snapname`` names the ZFS snapshot), a snapshot of a
Bound claim in a known class is ready at the claim's size, an unknown class leaves a claim
Pending (with a Warning event) or a snapshot in error. Objects are kept as the JSON the API
server would send, so the model's readers are exercised too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from components import constants as c
from components.promotion.lease import LeaseLostError
from components.promotion.model import (
    Claim,
    ConfigMapText,
    Inventory,
    PodUse,
    Pointer,
    Snapshot,
    ZfsSnapshot,
    ZfsVolume,
)
from components.promotion.port import PointerConflictError

__all__ = ["Crash", "FakeClock", "MemoryCluster", "MemoryLease"]

Obj = dict[str, Any]


class Crash(BaseException):
    # BaseException: a process dying is not an error any step may catch and handle.
    """Raised by a test's ``after_step`` to stop a run dead at a step."""


@dataclass
class FakeClock:
    """Time that passes only when something sleeps (or a test moves it)."""

    wall: datetime = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    mono: float = 0.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += timedelta(seconds=seconds)


@dataclass
class MemoryLease:
    """The lease port: held between acquire and release; ``lost`` makes ensure_held fail."""

    held: bool = False
    acquired: int = 0
    lost: str | None = None

    def acquire(self, timeout: float) -> None:
        self.held = True
        self.acquired += 1

    def ensure_held(self) -> None:
        if self.lost or not self.held:
            raise LeaseLostError(self.lost or "not held")

    def release(self) -> None:
        self.held = False


@dataclass
class MemoryCluster:
    """The cluster port over dicts (one namespace; ZFS objects wherever OpenEBS keeps them)."""

    namespace: str = "arc-runners"
    storage_classes: set[str] = field(default_factory=lambda: {"node-class"})
    snapshot_classes: set[str] = field(default_factory=lambda: {"snapshots"})
    claims: dict[str, Obj] = field(default_factory=dict)
    snapshots: dict[str, Obj] = field(default_factory=dict)
    pod_objects: dict[str, Obj] = field(default_factory=dict)
    config_maps: dict[str, Obj] = field(default_factory=dict)
    zfs_volumes: dict[str, Obj] = field(default_factory=dict)
    zfs_snapshots: dict[str, Obj] = field(default_factory=dict)
    handles: dict[str, str] = field(default_factory=dict)
    events: dict[str, list[str]] = field(default_factory=dict)
    pointer_data: dict[str, tuple[dict[str, str], int]] = field(default_factory=dict)
    leases: set[str] = field(default_factory=set)
    #: Every write, as ``verb kind name``.
    writes: list[str] = field(default_factory=list)
    _uid: int = 0

    # --- set-up, as the stack and the jobs make things -----------------------------------

    def stack_lineage(self, cache: str = "gcc12", size: str = "10Gi") -> None:
        """Generation 1 and builder volume 1, as BuildCache makes them, Bound."""
        labels = {c.LABEL_CACHE: cache, c.LABEL_ROLE: c.ROLE_PARENT, c.LABEL_GENERATION: "1"}
        self._store_claim(c.generation_name(cache, 1), source=None, size=size, labels=labels)
        self._store_claim(
            c.builder_volume_name(cache, 1),
            source=("PersistentVolumeClaim", c.generation_name(cache, 1)),
            size=size,
            labels={c.LABEL_CACHE: cache, c.LABEL_ROLE: c.ROLE_BUILDER_VOLUME},
        )

    def job_clone(self, name: str, parent: str) -> None:
        """A job's clone of ``parent`` (what the hook's ephemeral volume makes)."""
        size = self.claims[parent]["spec"]["resources"]["requests"]["storage"]
        self._store_claim(name, source=("PersistentVolumeClaim", parent), size=size, labels={})

    def pod(self, name: str, claim: str, phase: str = "Running") -> None:
        """A pod whose volume is ``claim``."""
        self.pod_objects[name] = {
            "metadata": {"name": name},
            "spec": {"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": claim}}]},
            "status": {"phase": phase},
        }

    def hook_config_map(self, name: str, parent: str) -> None:
        """A hook-template ConfigMap naming ``parent``."""
        self.config_maps[name] = {
            "metadata": {"name": name},
            "data": {c.HOOK_TEMPLATE_KEY: f"dataSource:\n  name: {parent}\n"},
        }

    def backdate(self, claim: str, annotation: str, seconds: float, now: datetime) -> None:
        """Move a superseded-at/retired-at stamp ``seconds`` before ``now``."""
        when = (now - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.claims[claim]["metadata"]["annotations"][annotation] = when

    def names(self, role: str) -> set[str]:
        """Names of the claims (or, for source snapshots, snapshots) with ``role``."""
        pool = self.snapshots if role == c.ROLE_SOURCE_SNAPSHOT else self.claims
        return {n for n, o in pool.items() if o["metadata"]["labels"].get(c.LABEL_ROLE) == role}

    # --- the port: pointer and lease ------------------------------------------------------

    def read_pointer(self, cache: str) -> tuple[Pointer, str] | None:
        found = self.pointer_data.get(cache)
        if found is None:
            return None
        return Pointer.from_data(c.promotion_pointer_name(cache), found[0]), str(found[1])

    def create_pointer(self, cache: str, pointer: Pointer) -> bool:
        if cache in self.pointer_data:
            return False
        self.writes.append(f"create ConfigMap {c.promotion_pointer_name(cache)}")
        self.pointer_data[cache] = (pointer.to_data(), self._next())
        return True

    def swap_pointer(self, cache: str, new: Pointer, version: str) -> str:
        found = self.pointer_data.get(cache)
        if found is None or str(found[1]) != version:
            raise PointerConflictError(f"pointer of {cache} changed since version {version}")
        self.writes.append(f"replace ConfigMap {c.promotion_pointer_name(cache)}")
        self.pointer_data[cache] = (new.to_data(), self._next())
        return str(self.pointer_data[cache][1])

    def delete_pointer(self, cache: str) -> None:
        self.writes.append(f"delete ConfigMap {c.promotion_pointer_name(cache)}")
        self.pointer_data.pop(cache, None)

    def delete_lease(self, cache: str) -> None:
        self.writes.append(f"delete Lease {c.promotion_lease_name(cache)}")
        self.leases.discard(cache)

    # --- the port: reads ------------------------------------------------------------------

    def claim(self, name: str) -> Claim | None:
        obj = self.claims.get(name)
        return None if obj is None else Claim.from_object(obj)

    def snapshot(self, name: str) -> Snapshot | None:
        obj = self.snapshots.get(name)
        return None if obj is None else Snapshot.from_object(obj)

    def pods(self) -> list[PodUse]:
        return [PodUse.from_object(o) for o in self.pod_objects.values()]

    def events_about(self, name: str) -> list[str]:
        return list(self.events.get(name, []))

    def inventory(self) -> Inventory:
        return Inventory(
            claims=tuple(Claim.from_object(o) for o in self.claims.values()),
            snapshots=tuple(Snapshot.from_object(o) for o in self.snapshots.values()),
            pods=tuple(self.pods()),
            config_maps=tuple(ConfigMapText.from_object(o) for o in self.config_maps.values()),
            zfs_volumes=tuple(ZfsVolume.from_object(o) for o in self.zfs_volumes.values()),
            zfs_snapshots=tuple(ZfsSnapshot.from_object(o) for o in self.zfs_snapshots.values()),
            snapshot_handles=dict(self.handles),
        )

    def zfs_volume_exists(self, name: str) -> bool:
        return name in self.zfs_volumes

    # --- the port: writes -----------------------------------------------------------------

    def create_claim(self, body: Obj) -> bool:
        meta, spec = body["metadata"], body["spec"]
        if meta["name"] in self.claims:
            return False
        self.writes.append(f"create PersistentVolumeClaim {meta['name']}")
        source = spec.get("dataSource")
        self._store_claim(
            meta["name"],
            storage_class=spec["storageClassName"],
            source=(source["kind"], source["name"]) if source else None,
            size=spec["resources"]["requests"]["storage"],
            labels=dict(meta.get("labels") or {}),
            annotations=dict(meta.get("annotations") or {}),
        )
        return True

    def create_snapshot(self, body: Obj) -> bool:
        meta, spec = body["metadata"], body["spec"]
        name = meta["name"]
        if name in self.snapshots:
            return False
        self.writes.append(f"create VolumeSnapshot {name}")
        uid = f"uid-{self._next()}"
        source = self.claims.get(spec["source"]["persistentVolumeClaimName"])
        status: Obj = {"readyToUse": False}
        cls = spec["volumeSnapshotClassName"]
        if cls not in self.snapshot_classes:
            status["error"] = {
                "message": f'volumesnapshotclass.snapshot.storage.k8s.io "{cls}" not found'
            }
        elif source is not None and source["status"].get("phase") == "Bound":
            volume = source["spec"]["volumeName"]
            content = f"snapcontent-{uid}"
            self.handles[content] = f"{volume}@snapshot-{uid}"
            self.zfs_snapshots[f"snapshot-{uid}"] = {
                "metadata": {
                    "name": f"snapshot-{uid}",
                    "labels": {c.OPENEBS_PERSISTENT_VOLUME_LABEL: volume},
                }
            }
            status = {
                "readyToUse": True,
                "restoreSize": source["spec"]["resources"]["requests"]["storage"],
                "boundVolumeSnapshotContentName": content,
            }
        self.snapshots[name] = {
            "metadata": {
                "name": name,
                "uid": uid,
                "labels": dict(meta.get("labels") or {}),
                "annotations": dict(meta.get("annotations") or {}),
            },
            "spec": spec,
            "status": status,
        }
        return True

    def annotate_claim(self, name: str, annotations: Mapping[str, str]) -> None:
        self.writes.append(f"patch PersistentVolumeClaim {name}")
        self.claims[name]["metadata"]["annotations"].update(annotations)

    def delete_claim(self, name: str) -> None:
        self.writes.append(f"delete PersistentVolumeClaim {name}")
        obj = self.claims.pop(name, None)
        if obj is not None:
            self.zfs_volumes.pop(obj["spec"].get("volumeName") or "", None)

    def delete_snapshot(self, name: str) -> None:
        self.writes.append(f"delete VolumeSnapshot {name}")
        obj = self.snapshots.pop(name, None)
        if obj is not None:
            content = obj["status"].get("boundVolumeSnapshotContentName")
            handle = self.handles.pop(content or "", "")
            self.zfs_snapshots.pop(handle.rpartition("@")[2], None)

    # --- the simulated controllers --------------------------------------------------------

    def _next(self) -> int:
        self._uid += 1
        return self._uid

    def _store_claim(
        self,
        name: str,
        *,
        source: tuple[str, str] | None,
        size: str,
        labels: dict[str, str],
        storage_class: str = "node-class",
        annotations: dict[str, str] | None = None,
    ) -> None:
        spec: Obj = {
            "storageClassName": storage_class,
            "resources": {"requests": {"storage": size}},
        }
        if source is not None:
            spec["dataSource"] = {"kind": source[0], "name": source[1]}
        obj: Obj = {
            "metadata": {"name": name, "labels": labels, "annotations": annotations or {}},
            "spec": spec,
            "status": {"phase": "Pending"},
        }
        self.claims[name] = obj
        zfs_labels: dict[str, str] = {}
        zfs_spec: Obj = {}
        if storage_class not in self.storage_classes:
            self.events.setdefault(name, []).append(
                f'ProvisioningFailed: storageclass.storage.k8s.io "{storage_class}" not found'
            )
            return
        if source is not None and source[0] == "PersistentVolumeClaim":
            parent = self.claims.get(source[1])
            if parent is None or parent["status"]["phase"] != "Bound":
                return
            zfs_labels[c.OPENEBS_SOURCE_VOLUME_LABEL] = parent["spec"]["volumeName"]
        elif source is not None:
            snap = self.snapshots.get(source[1])
            if snap is None or not snap["status"].get("readyToUse"):
                return
            content = snap["status"]["boundVolumeSnapshotContentName"]
            zfs_spec["snapname"] = self.handles[content]
        volume = f"pvc-{self._next()}"
        self.zfs_volumes[volume] = {
            "metadata": {"name": volume, "labels": zfs_labels},
            "spec": zfs_spec,
        }
        spec["volumeName"] = volume
        obj["status"] = {"phase": "Bound"}
