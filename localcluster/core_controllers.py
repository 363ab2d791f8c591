"""Minimal stand-ins for kube-controller-manager's controllers (used when it does not run).

The toolchain builds kube-apiserver, not kube-controller-manager, so without these:
pods could not be created (no ``default`` service account), generic ephemeral volumes
would never get their PVC, PVCs created with ``volumeName`` would never bind, deletes
with ``propagationPolicy: Foreground`` (what pulumi-kubernetes sends) would hang on the
``foregroundDeletion`` finalizer, owned objects would never be collected and deleted
namespaces would stay Terminating forever.

:class:`CoreControllers` covers those, and nothing more:

* per pass of the stand-ins (:meth:`CoreControllers.reconcile`): the ephemeral
  volume controller, the service-account controller (``default`` only) and the PV binder's
  parts: naming a claim's provisioner (without that annotation the real csi-provisioner
  leaves the claim alone), binding pre-bound claims/volumes (which includes every PV
  the provisioner makes: it sets the claimRef) and releasing volumes whose claim is gone
  (the provisioner deletes only Released ones);
* in its own thread (:class:`GarbageCollector`), watching every listable resource
  found by discovery: the garbage collector (``foregroundDeletion`` and ``orphan``
  finalizers, dependents whose owners are gone, checked against the live owner first)
  and the namespace controller (delete everything in a Terminating namespace, then
  finalize it).

They are simplifications: no quota, no token secrets, no status conditions on namespaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import httpx2
from lightkube import KubeConfig
from lightkube.config import client_adapter
from lightkube.config.client_adapter import ConnectionParams

from localcluster.kube import Kube, meta

if TYPE_CHECKING:
    from localcluster.stand_ins import World

__all__ = ["CoreControllers", "GarbageCollector"]

log = logging.getLogger("localcluster.core_controllers")

_FOREGROUND: Final = "foregroundDeletion"
_ORPHAN: Final = "orphan"
_BIND_COMPLETED: Final = "pv.kubernetes.io/bind-completed"
#: What the PV controller sets on a claim it leaves to an external provisioner (both keys).
_STORAGE_PROVISIONER: Final = (
    "volume.kubernetes.io/storage-provisioner",
    "volume.beta.kubernetes.io/storage-provisioner",
)


def _deleting(obj: Mapping[str, Any]) -> bool:
    return meta(obj).get("deletionTimestamp") is not None


class CoreControllers:
    """See the module docstring; ``reconcile`` runs inside the stand-ins' passes."""

    def __init__(self, kube: Kube, kubeconfig: Path) -> None:
        self.kube = kube
        self.gc = GarbageCollector(kubeconfig)

    def start(self) -> None:
        """Start the garbage collector thread."""
        self.gc.start()

    def close(self) -> None:
        """Stop the garbage collector thread."""
        self.gc.stop()

    def reconcile(self, world: World) -> None:
        """Service accounts, ephemeral volume claims, provisioners and binding, from ``world``."""
        self._service_accounts(world)
        self._ephemeral_volumes(world)
        self._name_provisioners(world)
        self._static_binding(world)
        self._release(world)

    def _release(self, world: World) -> None:
        """As the PV binder's ``syncVolume``: a bound volume whose claim is gone is Released."""
        for name, volume in world.volumes.items():
            ref = (volume.get("spec") or {}).get("claimRef") or {}
            phase = (volume.get("status") or {}).get("phase")
            if not ref.get("uid") or _deleting(volume) or phase in ("Released", "Failed"):
                continue
            claim = world.claims.get((ref.get("namespace", ""), ref.get("name", "")))
            if claim is None or meta(claim)["uid"] != ref["uid"]:
                self.kube.patch(
                    "PersistentVolume", name, {"status": {"phase": "Released"}}, status=True
                )

    def _name_provisioners(self, world: World) -> None:
        """As the PV controller's ``setClaimProvisioner``: annotate unbound dynamic claims."""
        for (ns, name), claim in world.claims.items():
            spec = claim.get("spec") or {}
            storage_class = world.storage_classes.get(spec.get("storageClassName") or "")
            if _deleting(claim) or spec.get("volumeName") or storage_class is None:
                continue
            annotations = meta(claim).get("annotations") or {}
            wanted = {key: storage_class["provisioner"] for key in _STORAGE_PROVISIONER}
            if any(annotations.get(k) != v for k, v in wanted.items()):
                self.kube.patch(
                    "PersistentVolumeClaim", name, {"metadata": {"annotations": wanted}}, ns
                )

    def _service_accounts(self, world: World) -> None:
        for name, namespace in world.namespaces.items():
            if _deleting(namespace) or name in self._has_default_sa(world):
                continue
            self.kube.ensure(
                "ServiceAccount",
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": "default", "namespace": name},
                },
            )

    def _has_default_sa(self, world: World) -> set[str]:
        if world.service_accounts is None:
            world.service_accounts = {
                meta(sa)["namespace"]
                for sa in self.kube.list("ServiceAccount")
                if meta(sa)["name"] == "default"
            }
        return world.service_accounts

    def _ephemeral_volumes(self, world: World) -> None:
        for (ns, pod_name), pod in world.pods.items():
            if _deleting(pod):
                continue
            for volume in (pod.get("spec") or {}).get("volumes") or []:
                template = (volume.get("ephemeral") or {}).get("volumeClaimTemplate")
                if template is None:
                    continue
                claim_name = f"{pod_name}-{volume['name']}"
                if (ns, claim_name) in world.claims:
                    continue
                template_meta = template.get("metadata") or {}
                claim_meta: dict[str, Any] = {
                    "name": claim_name,
                    "namespace": ns,
                    "ownerReferences": [
                        {
                            "apiVersion": "v1",
                            "kind": "Pod",
                            "name": pod_name,
                            "uid": meta(pod)["uid"],
                            "controller": True,
                            "blockOwnerDeletion": True,
                        }
                    ],
                }
                for key in ("labels", "annotations"):
                    if template_meta.get(key):
                        claim_meta[key] = template_meta[key]
                self.kube.ensure(
                    "PersistentVolumeClaim",
                    {
                        "apiVersion": "v1",
                        "kind": "PersistentVolumeClaim",
                        "metadata": claim_meta,
                        "spec": template.get("spec") or {},
                    },
                )

    def _static_binding(self, world: World) -> None:
        """Bind claims that name their volume (and volumes pre-bound to a claim)."""
        claim_for_volume = {
            (c.get("spec") or {}).get("volumeName"): c
            for c in world.claims.values()
            if (c.get("spec") or {}).get("volumeName")
        }
        for name, volume in world.volumes.items():
            ref = (volume.get("spec") or {}).get("claimRef") or {}
            if not ref or _deleting(volume):
                continue
            claim = world.claims.get((ref.get("namespace", ""), ref.get("name", "")))
            if claim is None or _deleting(claim):
                continue
            if ref.get("uid") and ref["uid"] != meta(claim)["uid"]:
                continue
            claim_spec = claim.get("spec") or {}
            if claim_spec.get("volumeName") not in (None, "", name):
                continue
            if claim_for_volume.get(name) is not None and claim_for_volume[name] is not claim:
                continue
            self._bind_static(claim, volume)

    def _bind_static(self, claim: dict[str, Any], volume: dict[str, Any]) -> None:
        m = meta(claim)
        name = meta(volume)["name"]
        spec = volume.get("spec") or {}
        ref = spec.get("claimRef") or {}
        if ref.get("uid") != m["uid"]:
            self.kube.patch(
                "PersistentVolume",
                name,
                {
                    "spec": {
                        "claimRef": {
                            "apiVersion": "v1",
                            "kind": "PersistentVolumeClaim",
                            "namespace": m["namespace"],
                            "name": m["name"],
                            "uid": m["uid"],
                        }
                    }
                },
            )
        if (volume.get("status") or {}).get("phase") != "Bound":
            self.kube.patch("PersistentVolume", name, {"status": {"phase": "Bound"}}, status=True)
        claim_spec = claim.get("spec") or {}
        if (
            claim_spec.get("volumeName") != name
            or (m.get("annotations") or {}).get(_BIND_COMPLETED) != "yes"
        ):
            self.kube.patch(
                "PersistentVolumeClaim",
                m["name"],
                {
                    "metadata": {"annotations": {_BIND_COMPLETED: "yes"}},
                    "spec": {"volumeName": name},
                },
                m["namespace"],
            )
        wanted = {
            "phase": "Bound",
            "accessModes": spec.get("accessModes"),
            "capacity": spec.get("capacity"),
        }
        status = claim.get("status") or {}
        if any(status.get(k) != v for k, v in wanted.items()):
            self.kube.patch(
                "PersistentVolumeClaim", m["name"], {"status": wanted}, m["namespace"], status=True
            )


@dataclass(frozen=True, slots=True)
class _Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


@dataclass
class _Entry:
    resource: _Resource
    namespace: str | None
    name: str
    uid: str
    owners: list[dict[str, Any]]
    deleting: bool
    finalizers: list[str]
    resource_version: str
    spec_finalizers: list[str] = field(default_factory=list)


class GarbageCollector:
    """Garbage collector + namespace finalizer over every listable resource (own thread)."""

    def __init__(self, kubeconfig: Path, rediscover_every: float = 10.0) -> None:
        self.kubeconfig = kubeconfig
        self.rediscover_every = rediscover_every
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._dirty: asyncio.Event | None = None
        self._index: dict[tuple[str, str, str], _Entry] = {}
        self._by_kind: dict[tuple[str, str], _Resource] = {}
        self._synced: set[_Resource] = set()
        self._watched: dict[_Resource, asyncio.Task[None]] = {}
        self.errors = 0

    def start(self) -> None:
        """Run in a background thread."""
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="core-gc", daemon=True
        )
        self._thread.start()
        ready.wait(10)

    def stop(self) -> None:
        """Stop the thread (cancels the watches)."""
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main(ready))
        finally:
            loop.close()

    async def _main(self, ready: threading.Event) -> None:
        self._stop = asyncio.Event()
        self._dirty = asyncio.Event()
        ready.set()
        config = KubeConfig.from_file(str(self.kubeconfig)).get()
        assert config is not None  # from_file() raises on an unusable file
        params = ConnectionParams(timeout=httpx2.Timeout(30.0, read=None), trust_env=False)
        client = client_adapter.AsyncClient(config, params)
        worker = asyncio.create_task(self._work(client))
        try:
            while not self._stop.is_set():
                try:
                    await self._discover(client)
                except Exception as exc:
                    log.debug("discovery failed: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.rediscover_every)
        finally:
            worker.cancel()
            for task in self._watched.values():
                task.cancel()
            await asyncio.gather(worker, *self._watched.values(), return_exceptions=True)
            await client.aclose()

    async def _discover(self, client: httpx2.AsyncClient) -> None:
        group_versions = ["v1"]
        groups = (await client.get("/apis")).json()
        for group in groups.get("groups", []):
            group_versions.append(group["preferredVersion"]["groupVersion"])
        for group_version in group_versions:
            path = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
            response = await client.get(path)
            if response.status_code != 200:
                continue
            group, _, version = group_version.rpartition("/")
            for res in response.json().get("resources", []):
                verbs = set(res.get("verbs") or [])
                if "/" in res["name"] or not {"list", "watch", "delete"} <= verbs:
                    continue
                resource = _Resource(group, version, res["name"], res["kind"], res["namespaced"])
                self._by_kind.setdefault((resource.api_version, resource.kind), resource)
                if resource not in self._watched:
                    self._watched[resource] = asyncio.create_task(self._watch(client, resource))

    def _entry(self, resource: _Resource, obj: dict[str, Any]) -> _Entry:
        m = meta(obj)
        return _Entry(
            resource=resource,
            namespace=m.get("namespace"),
            name=m["name"],
            uid=m.get("uid", ""),
            owners=list(m.get("ownerReferences") or []),
            deleting=m.get("deletionTimestamp") is not None,
            finalizers=list(m.get("finalizers") or []),
            resource_version=m.get("resourceVersion", ""),
            spec_finalizers=list((obj.get("spec") or {}).get("finalizers") or [])
            if resource.kind == "Namespace" and not resource.group
            else [],
        )

    @staticmethod
    def _key(resource: _Resource, namespace: str | None, name: str) -> tuple[str, str, str]:
        return (resource.path(), namespace or "", name)

    async def _watch(self, client: httpx2.AsyncClient, resource: _Resource) -> None:
        assert self._dirty is not None
        while True:
            try:
                listing = await client.get(resource.path())
                listing.raise_for_status()
                body = listing.json()
                for key in [k for k, e in self._index.items() if e.resource == resource]:
                    del self._index[key]
                for item in body.get("items") or []:
                    entry = self._entry(resource, item)
                    self._index[self._key(resource, entry.namespace, entry.name)] = entry
                self._synced.add(resource)
                self._dirty.set()
                version = (body.get("metadata") or {}).get("resourceVersion", "")
                params = {"watch": "1", "resourceVersion": version, "timeoutSeconds": "300"}
                async with client.stream("GET", resource.path(), params=params) as stream:
                    if stream.status_code != 200:
                        raise RuntimeError(f"watch {resource.plural}: HTTP {stream.status_code}")
                    async for line in stream.aiter_lines():
                        if not line.strip():
                            continue
                        event = json.loads(line)
                        obj = event.get("object") or {}
                        if event.get("type") == "ERROR":
                            break  # e.g. 410 Gone: list again
                        if event.get("type") not in ("ADDED", "MODIFIED", "DELETED"):
                            continue
                        entry = self._entry(resource, obj)
                        key = self._key(resource, entry.namespace, entry.name)
                        if event["type"] == "DELETED":
                            self._index.pop(key, None)
                        else:
                            self._index[key] = entry
                        self._dirty.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("watch %s: %s; relisting", resource.plural, exc)
                await asyncio.sleep(1.0)

    async def _work(self, client: httpx2.AsyncClient) -> None:
        assert self._dirty is not None
        while True:
            await self._dirty.wait()
            await asyncio.sleep(0.05)  # coalesce a burst of events
            self._dirty.clear()
            try:
                retry = await self._collect(client)
            except Exception:
                self.errors += 1
                log.exception("garbage collection pass failed")
                retry = True
            if retry:
                await asyncio.sleep(0.5)
                self._dirty.set()

    async def _delete(
        self, client: httpx2.AsyncClient, entry: _Entry, policy: str = "Background"
    ) -> None:
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": policy}
        response = await client.request(
            "DELETE", entry.resource.path(entry.namespace, entry.name), json=body
        )
        if response.status_code not in (200, 202, 404, 409):
            log.debug("delete %s: HTTP %s", entry.name, response.status_code)

    async def _drop_finalizer(
        self, client: httpx2.AsyncClient, entry: _Entry, finalizer: str
    ) -> None:
        patch = {
            "metadata": {
                "finalizers": [f for f in entry.finalizers if f != finalizer],
                "resourceVersion": entry.resource_version,
            }
        }
        await client.patch(
            entry.resource.path(entry.namespace, entry.name),
            content=json.dumps(patch),
            headers={"Content-Type": "application/merge-patch+json"},
        )

    async def _owner_gone(
        self, client: httpx2.AsyncClient, entry: _Entry, owner: dict[str, Any]
    ) -> bool:
        resource = self._by_kind.get((owner.get("apiVersion", ""), owner.get("kind", "")))
        if resource is None or resource not in self._synced:
            return False  # an owner kind we do not know: never collect on a guess
        namespace = entry.namespace if resource.namespaced else None
        if self._key(resource, namespace, owner.get("name", "")) in self._index:
            indexed = self._index[self._key(resource, namespace, owner.get("name", ""))]
            if indexed.uid == owner.get("uid"):
                return False
        # Confirm against the live object: the owner's ADDED event may not be here yet.
        response = await client.get(resource.path(namespace, owner.get("name", "")))
        if response.status_code == 404:
            return True
        if response.status_code == 200:
            return bool(meta(response.json()).get("uid") != owner.get("uid"))
        return False

    async def _collect(self, client: httpx2.AsyncClient) -> bool:
        """One pass; True if something is still in progress (then it runs again soon)."""
        entries = list(self._index.values())
        alive = {e.uid for e in entries}
        dependents: dict[str, list[_Entry]] = {}
        for entry in entries:
            for owner in entry.owners:
                dependents.setdefault(owner.get("uid", ""), []).append(entry)
        in_progress = False
        for entry in entries:
            if not entry.deleting:
                continue
            deps = dependents.get(entry.uid, [])
            if _FOREGROUND in entry.finalizers:
                blocking = [
                    d
                    for d in deps
                    if any(
                        o.get("uid") == entry.uid and o.get("blockOwnerDeletion") for o in d.owners
                    )
                ]
                for dep in deps:
                    if not dep.deleting:
                        await self._delete(client, dep, "Foreground")
                if blocking:
                    in_progress = True
                else:
                    await self._drop_finalizer(client, entry, _FOREGROUND)
            elif _ORPHAN in entry.finalizers:
                for dep in deps:
                    owners = [o for o in dep.owners if o.get("uid") != entry.uid]
                    await client.patch(
                        dep.resource.path(dep.namespace, dep.name),
                        content=json.dumps({"metadata": {"ownerReferences": owners}}),
                        headers={"Content-Type": "application/merge-patch+json"},
                    )
                await self._drop_finalizer(client, entry, _ORPHAN)
        for entry in entries:
            if entry.deleting or not entry.owners:
                continue
            owner_uids = [o.get("uid") for o in entry.owners]
            if any(uid in alive for uid in owner_uids):
                continue
            gone = [await self._owner_gone(client, entry, o) for o in entry.owners]
            if all(gone):
                await self._delete(client, entry)
        in_progress |= await self._namespaces(client, entries)
        return in_progress

    async def _namespaces(self, client: httpx2.AsyncClient, entries: list[_Entry]) -> bool:
        in_progress = False
        for entry in entries:
            if not (
                entry.resource.kind == "Namespace"
                and not entry.resource.group
                and entry.deleting
                and "kubernetes" in entry.spec_finalizers
            ):
                continue
            contents = [e for e in entries if e.resource.namespaced and e.namespace == entry.name]
            for item in contents:
                if not item.deleting:
                    await self._delete(client, item)
            if contents:
                in_progress = True
                continue
            body = {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": entry.name, "resourceVersion": entry.resource_version},
                "spec": {"finalizers": [f for f in entry.spec_finalizers if f != "kubernetes"]},
            }
            await client.put(f"/api/v1/namespaces/{entry.name}/finalize", json=body)
        return in_progress

    def wait_synced(self, timeout: float = 30.0) -> bool:
        """Block until every discovered resource has been listed once (for tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._watched and set(self._watched) <= self._synced:
                return True
            time.sleep(0.05)
        return False
