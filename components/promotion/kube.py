"""The cluster port over lightkube: :class:`KubeCluster` (one per provider call).

Clients are built here, inside the provider's methods, never at import or serialisation
time. Reads return the model's objects, read from the plain JSON the API server sends;
writes are idempotent (create tolerates "already exists", delete tolerates "not found") so
every protocol step can be repeated after a crash.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, Final, cast

import httpx2
import yaml
from lightkube import ApiError, Client, KubeConfig
from lightkube.generic_resource import create_global_resource, create_namespaced_resource
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import ConfigMap, Event, PersistentVolumeClaim, Pod
from lightkube.types import PatchType

from components import constants as c
from components.promotion import manifests
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

__all__ = ["ApiClient", "KubeCluster", "client_for"]

JsonDict = dict[str, Any]
#: Serialises promotion's API calls within a process (see ApiClient). Module state, never
#: part of the serialised provider (it is pickled by reference).
_API_LOCK: Final = threading.RLock()


class ApiClient:
    """A lightkube Client whose calls run one at a time in this process.

    lightkube decodes responses with msgspec, and decoding a type for the first time from two
    threads at once crashed the provider process (SIGSEGV in lightkube's list decoding, seen
    when the engine deleted two caches' promotions in parallel: it calls a dynamic provider
    from several threads). So every call, including the decoding of its whole response, holds
    one process-wide lock. Calls are short; every wait happens outside it.
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    def get(self, resource: Any, name: str, *, namespace: str | None = None) -> Any:
        """GET one object."""
        with _API_LOCK:
            return self._client.get(resource, name, namespace=namespace)

    def list(
        self,
        resource: Any,
        *,
        namespace: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> list[Any]:
        """LIST objects (every page, decoded inside the lock)."""
        with _API_LOCK:
            if namespace is None:
                return list(self._client.list(resource, fields=fields))
            return list(self._client.list(resource, namespace=namespace, fields=fields))

    def create(self, obj: Any, *, namespace: str | None = None) -> Any:
        """POST an object."""
        with _API_LOCK:
            return self._client.create(obj, namespace=namespace)

    def replace(self, obj: Any) -> Any:
        """PUT an object (its metadata.resourceVersion is the precondition)."""
        with _API_LOCK:
            return self._client.replace(obj)

    def patch(self, resource: Any, name: str, patch: Any, *, namespace: str | None) -> Any:
        """Merge-patch an object."""
        with _API_LOCK:
            return self._client.patch(
                resource, name, patch, namespace=namespace, patch_type=PatchType.MERGE
            )

    def delete(self, resource: Any, name: str, *, namespace: str | None = None) -> None:
        """DELETE an object."""
        with _API_LOCK:
            self._client.delete(resource, name, namespace=namespace)

    def close(self) -> None:
        """Close the connections."""
        self._client.close()


def client_for(kubeconfig: str | None, context: str | None, timeout: float = 30.0) -> ApiClient:
    """A lightkube client for a kubeconfig path (or kubeconfig content) and context.

    ``None`` means what kubectl would use: the in-cluster service account, else the first
    existing file of ``$KUBECONFIG``, else ``~/.kube/config``.
    """
    if kubeconfig and ("\n" in kubeconfig or kubeconfig.lstrip().startswith("{")):
        config = KubeConfig.from_dict(yaml.safe_load(kubeconfig))
    elif kubeconfig:
        config = KubeConfig.from_file(Path(kubeconfig).expanduser())
    else:
        paths = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
        existing = [p for p in paths if Path(p).expanduser().exists()]
        if existing:
            config = KubeConfig.from_file(Path(existing[0]).expanduser())
        else:
            config = KubeConfig.from_env()
    single = config.get(context_name=context)
    if single is None:
        raise ValueError(f"kubeconfig has no context {context!r} (and no current context)")
    return ApiClient(
        Client(config=single, timeout=httpx2.Timeout(timeout), field_manager="arc-zfs-cache")
    )


# Generic resources are registered lazily (first use inside a provider method), so importing
# this module registers nothing.
@cache
def volume_snapshot() -> Any:
    """lightkube class of VolumeSnapshot."""
    return create_namespaced_resource(
        c.SNAPSHOT_API_GROUP, c.SNAPSHOT_API_VERSION, "VolumeSnapshot", "volumesnapshots"
    )


@cache
def volume_snapshot_content() -> Any:
    """lightkube class of VolumeSnapshotContent (cluster-scoped)."""
    return create_global_resource(
        c.SNAPSHOT_API_GROUP,
        c.SNAPSHOT_API_VERSION,
        "VolumeSnapshotContent",
        "volumesnapshotcontents",
    )


@cache
def zfs_volume() -> Any:
    """lightkube class of the OpenEBS ZFSVolume."""
    group, _, version = c.ZFS_API_VERSION.partition("/")
    return create_namespaced_resource(group, version, "ZFSVolume", "zfsvolumes")


@cache
def zfs_snapshot() -> Any:
    """lightkube class of the OpenEBS ZFSSnapshot."""
    group, _, version = c.ZFS_API_VERSION.partition("/")
    return create_namespaced_resource(group, version, "ZFSSnapshot", "zfssnapshots")


def _as_dict(obj: Any) -> JsonDict:
    if isinstance(obj, dict):
        return dict(obj)
    data: JsonDict = obj.to_dict()
    return data


def _missing(exc: ApiError) -> bool:
    return exc.status.code == 404


class KubeCluster:
    """The cluster port (:class:`components.promotion.port.ClusterPort`) for one namespace;
    ZFSVolumes and ZFSSnapshots are read in ``zfs_namespace``, where OpenEBS keeps them."""

    def __init__(self, client: ApiClient, namespace: str, zfs_namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self.zfs_namespace = zfs_namespace

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()

    # --- pointer -------------------------------------------------------------------------

    def read_pointer(self, cache_name: str) -> tuple[Pointer, str] | None:
        """The pointer and its resourceVersion, or None if there is none."""
        name = c.promotion_pointer_name(cache_name)
        try:
            cm = self.client.get(ConfigMap, name, namespace=self.namespace)
        except ApiError as exc:
            if _missing(exc):
                return None
            raise
        version = (cm.metadata.resourceVersion if cm.metadata else None) or ""
        return Pointer.from_data(f"{self.namespace}/{name}", cm.data), version

    def create_pointer(self, cache_name: str, pointer: Pointer) -> bool:
        """Create the pointer; False if it already exists (someone else was first)."""
        body = ConfigMap.from_dict(
            manifests.pointer_config_map(self.namespace, cache_name, pointer)
        )
        try:
            self.client.create(body)
        except ApiError as exc:
            if exc.status.code == 409:
                return False
            raise
        return True

    def swap_pointer(self, cache_name: str, new: Pointer, version: str) -> str:
        """Compare-and-swap: replace the pointer only if it is still at ``version``; return
        the new resourceVersion or raise PointerConflictError."""
        body = ConfigMap.from_dict(
            manifests.pointer_config_map(self.namespace, cache_name, new, version)
        )
        try:
            replaced = self.client.replace(body)
        except ApiError as exc:
            if exc.status.code in (404, 409):
                raise PointerConflictError(
                    f"promotion pointer {self.namespace}/{c.promotion_pointer_name(cache_name)} "
                    f"changed since it was read at resourceVersion {version} "
                    f"({exc.status.message})"
                ) from None
            raise
        return (replaced.metadata.resourceVersion if replaced.metadata else None) or ""

    def delete_pointer(self, cache_name: str) -> None:
        """Delete the pointer ConfigMap (gone already is fine)."""
        self._delete(ConfigMap, c.promotion_pointer_name(cache_name))

    def delete_lease(self, cache_name: str) -> None:
        """Delete the cache's promotion Lease (gone already is fine)."""
        self._delete(Lease, c.promotion_lease_name(cache_name))

    # --- reads ---------------------------------------------------------------------------

    def claim(self, name: str) -> Claim | None:
        """One PVC of the namespace."""
        try:
            obj = self.client.get(PersistentVolumeClaim, name, namespace=self.namespace)
        except ApiError as exc:
            if _missing(exc):
                return None
            raise
        return Claim.from_object(_as_dict(obj))

    def snapshot(self, name: str) -> Snapshot | None:
        """One VolumeSnapshot of the namespace."""
        try:
            obj = self.client.get(volume_snapshot(), name, namespace=self.namespace)
        except ApiError as exc:
            if _missing(exc):
                return None
            raise
        return Snapshot.from_object(_as_dict(obj))

    def pods(self) -> list[PodUse]:
        """Every pod of the namespace."""
        return [
            PodUse.from_object(_as_dict(p)) for p in self.client.list(Pod, namespace=self.namespace)
        ]

    def events_about(self, name: str) -> list[str]:
        """Messages of the namespace's Warning events about object ``name`` (newest last)."""
        events = self.client.list(
            Event, namespace=self.namespace, fields={"involvedObject.name": name}
        )
        return [f"{e.reason}: {e.message}" for e in events if e.type == "Warning" and e.message]

    def _list(self, resource: Any, namespace: str | None) -> Iterable[Any]:
        try:
            return self.client.list(resource, namespace=namespace)
        except ApiError as exc:
            # The kind is not installed (e.g. no OpenEBS on this cluster): none exist. Any
            # other error (403 …) propagates: collecting blind is never acceptable.
            if _missing(exc):
                return []
            raise

    def inventory(self) -> Inventory:
        """Everything that can refer to or depend on a claim of this namespace."""
        ns = self.namespace
        handles: dict[str, str] = {}
        for content in self._list(volume_snapshot_content(), None):
            data = _as_dict(content)
            handle = (data.get("status") or {}).get("snapshotHandle")
            if handle:
                handles[data["metadata"]["name"]] = handle
        return Inventory(
            claims=tuple(
                Claim.from_object(_as_dict(o)) for o in self._list(PersistentVolumeClaim, ns)
            ),
            snapshots=tuple(
                Snapshot.from_object(_as_dict(o)) for o in self._list(volume_snapshot(), ns)
            ),
            pods=tuple(PodUse.from_object(_as_dict(o)) for o in self._list(Pod, ns)),
            config_maps=tuple(
                ConfigMapText.from_object(_as_dict(o)) for o in self._list(ConfigMap, ns)
            ),
            zfs_volumes=tuple(
                ZfsVolume.from_object(_as_dict(o))
                for o in self._list(zfs_volume(), self.zfs_namespace)
            ),
            zfs_snapshots=tuple(
                ZfsSnapshot.from_object(_as_dict(o))
                for o in self._list(zfs_snapshot(), self.zfs_namespace)
            ),
            snapshot_handles=handles,
        )

    def zfs_volume_exists(self, name: str) -> bool:
        """True if ZFSVolume ``name`` still exists (its dataset is not destroyed yet)."""
        try:
            self.client.get(zfs_volume(), name, namespace=self.zfs_namespace)
        except ApiError as exc:
            if _missing(exc):
                return False
            raise
        return True

    # --- writes --------------------------------------------------------------------------

    def create_claim(self, body: JsonDict) -> bool:
        """Create a PVC; False if it already exists."""
        try:
            claim = cast(PersistentVolumeClaim, PersistentVolumeClaim.from_dict(body))
            self.client.create(claim, namespace=self.namespace)
        except ApiError as exc:
            if exc.status.code == 409:
                return False
            raise
        return True

    def create_snapshot(self, body: JsonDict) -> bool:
        """Create a VolumeSnapshot; False if it already exists."""
        try:
            self.client.create(volume_snapshot()(body), namespace=self.namespace)
        except ApiError as exc:
            if exc.status.code == 409:
                return False
            raise
        return True

    def annotate_claim(self, name: str, annotations: Mapping[str, str]) -> None:
        """Merge ``annotations`` into a PVC's metadata."""
        self.client.patch(
            PersistentVolumeClaim,
            name,
            {"metadata": {"annotations": dict(annotations)}},
            namespace=self.namespace,
        )

    def delete_claim(self, name: str) -> None:
        """Delete a PVC (gone already is fine)."""
        self._delete(PersistentVolumeClaim, name)

    def delete_snapshot(self, name: str) -> None:
        """Delete a VolumeSnapshot (gone already is fine)."""
        self._delete(volume_snapshot(), name)

    def _delete(self, resource: Any, name: str) -> None:
        try:
            self.client.delete(resource, name, namespace=self.namespace)
        except ApiError as exc:
            if not _missing(exc):
                raise
