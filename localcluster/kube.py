"""A small dict-in, dict-out layer over lightkube for the doubles, stand-ins and the harness.

They reason about objects as plain JSON (the way the API server and the
upstream controllers see them), so every call here takes and returns dicts. Core kinds
use lightkube's typed resources (converted at the edge) so that nothing registers
generic classes for core kinds in lightkube's global registry; CRD kinds use generic
resources, the normal lightkube way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx2
import msgspec
from lightkube import ApiError, Client, KubeConfig
from lightkube.generic_resource import create_global_resource, create_namespaced_resource
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.core_v1 import (
    ConfigMap,
    Event,
    Namespace,
    PersistentVolume,
    PersistentVolumeClaim,
    Pod,
    PodBinding,
    ServiceAccount,
)
from lightkube.resources.storage_v1 import StorageClass
from lightkube.types import PatchType

__all__ = [
    "KINDS",
    "ApiError",
    "Kind",
    "Kube",
    "is_conflict",
    "is_not_found",
    "make_client",
    "meta",
]

JsonDict = dict[str, Any]
#: A JSON patch (a list of operations); named because ``Kube.list`` shadows ``list``.
JsonPatch = list[JsonDict]


@dataclass(frozen=True, slots=True)
class Kind:
    """One API kind: its lightkube resource class and whether it is namespaced."""

    name: str
    resource: Any
    namespaced: bool
    typed: bool


def _crd_kind(group: str, version: str, kind: str, plural: str, namespaced: bool) -> Kind:
    factory = create_namespaced_resource if namespaced else create_global_resource
    return Kind(kind, factory(group, version, kind, plural), namespaced, typed=False)


#: Every kind the local cluster tooling reads or writes.
KINDS: Final[Mapping[str, Kind]] = {
    k.name: k
    for k in (
        Kind("Namespace", Namespace, False, True),
        Kind("ServiceAccount", ServiceAccount, True, True),
        Kind("ConfigMap", ConfigMap, True, True),
        Kind("Pod", Pod, True, True),
        Kind("Event", Event, True, True),
        Kind("PersistentVolumeClaim", PersistentVolumeClaim, True, True),
        Kind("PersistentVolume", PersistentVolume, False, True),
        Kind("StorageClass", StorageClass, False, True),
        Kind("CustomResourceDefinition", CustomResourceDefinition, False, True),
        _crd_kind("snapshot.storage.k8s.io", "v1", "VolumeSnapshot", "volumesnapshots", True),
        _crd_kind(
            "snapshot.storage.k8s.io",
            "v1",
            "VolumeSnapshotContent",
            "volumesnapshotcontents",
            False,
        ),
        _crd_kind(
            "snapshot.storage.k8s.io", "v1", "VolumeSnapshotClass", "volumesnapshotclasses", False
        ),
        _crd_kind("zfs.openebs.io", "v1", "ZFSVolume", "zfsvolumes", True),
        _crd_kind("zfs.openebs.io", "v1", "ZFSSnapshot", "zfssnapshots", True),
    )
}


def meta(obj: Mapping[str, Any]) -> JsonDict:
    """``obj["metadata"]`` (an empty dict if absent)."""
    result: JsonDict = obj.get("metadata") or {}
    return result


def is_not_found(exc: Exception) -> bool:
    """True for a 404 from the API server."""
    return isinstance(exc, ApiError) and exc.status.code == 404


def is_conflict(exc: Exception) -> bool:
    """True for 409 (already exists, or a stale resourceVersion)."""
    return isinstance(exc, ApiError) and exc.status.code == 409


def make_client(kubeconfig: Path, *, context: str | None = None, timeout: float = 30.0) -> Client:
    """A lightkube client for ``kubeconfig`` (never the environment's KUBECONFIG)."""
    config = KubeConfig.from_file(str(kubeconfig)).get(context_name=context)
    return Client(config=config, timeout=httpx2.Timeout(timeout), trust_env=False)


def _to_dict(kind: Kind, obj: Any) -> JsonDict:
    data: JsonDict = obj.to_dict() if kind.typed else dict(obj)
    if kind.typed:
        version = kind.resource._api_info.resource.version
        group = kind.resource._api_info.resource.group
        data.setdefault("apiVersion", f"{group}/{version}" if group else version)
        data.setdefault("kind", kind.name)
    return data


class Kube:
    """dict-based list/get/create/patch/delete/watch for the kinds in :data:`KINDS`."""

    def __init__(self, client: Client) -> None:
        self.client = client

    @staticmethod
    def kind(name: str) -> Kind:
        """The :class:`Kind` called ``name``."""
        return KINDS[name]

    def list(self, kind: str, namespace: str | None = None) -> list[JsonDict]:
        """All objects of ``kind`` (all namespaces unless ``namespace``)."""
        k = KINDS[kind]
        if k.namespaced:
            items = self.client.list(k.resource, namespace=namespace or "*")
        else:
            items = self.client.list(k.resource)
        return [_to_dict(k, item) for item in items]

    def get(self, kind: str, name: str, namespace: str | None = None) -> JsonDict | None:
        """One object, or None if it does not exist."""
        k = KINDS[kind]
        try:
            if k.namespaced:
                obj = self.client.get(k.resource, name, namespace=namespace)
            else:
                obj = self.client.get(k.resource, name)
        except ApiError as exc:
            if is_not_found(exc):
                return None
            raise
        return _to_dict(k, obj)

    def create(self, kind: str, body: JsonDict, *, dry_run: bool = False) -> JsonDict:
        """Create ``body``; raises ApiError (409 if it exists)."""
        k = KINDS[kind]
        obj = k.resource.from_dict(body) if k.typed else k.resource(body)
        namespace = meta(body).get("namespace")
        created = self.client.create(
            obj, namespace=namespace if k.namespaced else None, dry_run=dry_run
        )
        return _to_dict(k, created)

    def ensure(self, kind: str, body: JsonDict) -> bool:
        """Create ``body`` unless it exists; True if this call created it."""
        try:
            self.create(kind, body)
        except ApiError as exc:
            if is_conflict(exc):
                return False
            raise
        return True

    def patch(
        self,
        kind: str,
        name: str,
        patch: JsonDict | JsonPatch,
        namespace: str | None = None,
        *,
        status: bool = False,
        json_patch: bool = False,
    ) -> JsonDict:
        """Merge-patch (or JSON-patch) an object or its status subresource."""
        k = KINDS[kind]
        resource = k.resource.Status if status else k.resource
        patched = self.client.patch(
            resource,
            name,
            patch,
            namespace=namespace if k.namespaced else None,
            patch_type=PatchType.JSON if json_patch else PatchType.MERGE,
        )
        return _to_dict(k, patched)

    def delete(
        self, kind: str, name: str, namespace: str | None = None, *, grace_period: int | None = None
    ) -> bool:
        """Delete; False if it was already gone."""
        k = KINDS[kind]
        try:
            if k.namespaced:
                self.client.delete(k.resource, name, namespace=namespace, grace_period=grace_period)
            else:
                self.client.delete(k.resource, name, grace_period=grace_period)
        except ApiError as exc:
            if is_not_found(exc):
                return False
            raise
        return True

    def remove_finalizer(self, kind: str, obj: Mapping[str, Any], finalizer: str) -> None:
        """Drop ``finalizer`` from ``obj`` with a resourceVersion precondition."""
        m = meta(obj)
        finalizers = [f for f in m.get("finalizers") or [] if f != finalizer]
        with contextlib.suppress(ApiError):
            self.patch(
                kind,
                m["name"],
                {"metadata": {"finalizers": finalizers, "resourceVersion": m["resourceVersion"]}},
                m.get("namespace"),
            )

    def bind_pod(self, name: str, namespace: str, node: str) -> None:
        """Schedule a pod onto ``node`` the way kube-scheduler does (pods/binding)."""
        binding: Any = PodBinding.from_dict(
            {
                "metadata": {"name": name, "namespace": namespace},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            }
        )
        # The API server answers a binding with a Status, which lightkube cannot decode as
        # a Binding; errors still arrive as ApiError, before decoding.
        with contextlib.suppress(msgspec.ValidationError):
            self.client.create(binding, name, namespace=namespace)

    def watch(self, kind: str, server_timeout: int = 60) -> Iterator[tuple[str, JsonDict]]:
        """Watch ``kind`` in all namespaces; yields (event type, object)."""
        k = KINDS[kind]
        kwargs: dict[str, Any] = {"server_timeout": server_timeout}
        if k.namespaced:
            kwargs["namespace"] = "*"
        for event, obj in self.client.watch(k.resource, **kwargs):
            yield event, _to_dict(k, obj)
