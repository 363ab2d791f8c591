"""The model of cache promotion (pure): the resource's inputs, the pointer, the inventory.

Nothing here talks to an API server: every object is read from the JSON the API server
returns (``dict``), so the rules are unit-tested on plain data. :mod:`.plan` decides what a
run does from these, :mod:`.gc` what garbage collection does, and :mod:`.steps` acts through
the cluster port (:mod:`.port`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

from components import constants as c

__all__ = [
    "HISTORY_LENGTH",
    "TERMINAL_POD_PHASES",
    "Claim",
    "ConfigMapText",
    "Inventory",
    "PodUse",
    "Pointer",
    "PointerError",
    "PromotionInputs",
    "Snapshot",
    "ZfsSnapshot",
    "ZfsVolume",
    "builder_index_of",
    "builder_users",
    "format_time",
    "generation_of",
    "parse_time",
    "refers_to",
]

JsonDict = dict[str, Any]

#: Pods in these phases hold no volume any more.
TERMINAL_POD_PHASES: Final = frozenset({"Succeeded", "Failed"})

# Keys of the pointer ConfigMap's data (the protocol's source of truth for one cache).
_GENERATION: Final = "generation"
_PARENT_CLAIM: Final = "parentClaim"
_BUILDER_INDEX: Final = "builderIndex"
_BUILDER_CLAIM: Final = "builderClaim"
_PROMOTE_TOKEN: Final = "promoteToken"
_RESET_TOKEN: Final = "resetToken"
_PROMOTED_AT: Final = "promotedAt"
_PROMOTE_HISTORY: Final = "promoteHistory"
_RESET_HISTORY: Final = "resetHistory"
#: How many applied tokens the pointer remembers (re-runs and late duplicates are recognised
#: within this window).
HISTORY_LENGTH: Final = 50
_GENERATION_NAME = re.compile(r"-gen-(?P<n>[0-9]+)(-src)?$")
_BUILDER_NAME = re.compile(r"-work-(?P<n>[0-9]+)$")


def format_time(when: datetime) -> str:
    """RFC 3339 UTC with seconds, the form every annotation and pointer field uses."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime | None:
    """Parse an RFC 3339 time written by :func:`format_time` (or by the API server); None if
    absent or unreadable (callers treat an unreadable stamp like a missing one: conservatively)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class PromotionInputs:
    """The CachePromotion resource's inputs, typed (see :mod:`.resource` for their meaning)."""

    namespace: str
    cache: str
    root_claim: str
    builder_volume: str
    size: str
    node: str
    parent_storage_class: str
    snapshot_class: str
    lease_seconds: int
    grace_seconds: int
    retention_seconds: int
    ready_timeout_seconds: int
    promote: str | None
    reset_builder: str | None
    kubeconfig: str | None
    context: str | None
    #: Where OpenEBS keeps its ZFSVolume and ZFSSnapshot objects (``storage.namespace``).
    zfs_namespace: str = c.OPENEBS_NAMESPACE

    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> PromotionInputs:
        """Read the property bag the engine passes (durations in seconds).

        State written before an input existed lacks it: ``root_claim`` and
        ``builder_volume`` default to the stack-owned names, ``zfs_namespace`` to OpenEBS's
        default namespace (the only one earlier versions looked in).
        """

        def text(key: str) -> str | None:
            value = props.get(key)
            return None if value is None else str(value)

        cache = str(props["cache"])
        return cls(
            namespace=str(props["namespace"]),
            cache=cache,
            root_claim=str(props.get("root_claim") or c.generation_name(cache, 1)),
            builder_volume=str(props.get("builder_volume") or c.builder_volume_name(cache, 1)),
            size=str(props["size"]),
            node=str(props["node"]),
            parent_storage_class=str(props["parent_storage_class"]),
            snapshot_class=str(props["snapshot_class"]),
            lease_seconds=int(props["lease_seconds"]),
            grace_seconds=int(props["grace_seconds"]),
            retention_seconds=int(props["retention_seconds"]),
            ready_timeout_seconds=int(props["ready_timeout_seconds"]),
            promote=text("promote"),
            reset_builder=text("reset_builder"),
            kubeconfig=text("kubeconfig"),
            context=text("context"),
            zfs_namespace=str(props.get("zfs_namespace") or c.OPENEBS_NAMESPACE),
        )

    @property
    def lease_wait_seconds(self) -> int:
        """How long to wait for another holder: one whole promotion (a lease plus a snapshot
        and a clone wait), or a dead holder's lease running out."""
        return self.lease_seconds + 2 * self.ready_timeout_seconds

    @property
    def where(self) -> str:
        """``namespace/cache`` for messages."""
        return f"{self.namespace}/{self.cache}"


class PointerError(ValueError):
    """The pointer ConfigMap exists but cannot be read; the message says how to repair it."""


@dataclass(frozen=True, slots=True)
class Pointer:
    """Current generation and builder volume of one cache, and the tokens already applied.

    Stored as the data of ConfigMap ``<cache>-promotion``; it only ever moves by a
    compare-and-swap (a PUT with the resourceVersion it was read at). Tokens are idempotency
    keys: the pointer remembers the last :data:`HISTORY_LENGTH` of each kind, and a token it
    remembers is never applied again (a re-run after a crash adopts instead).
    """

    generation: int
    parent_claim: str
    builder_index: int
    builder_claim: str
    promote_token: str | None = None
    reset_token: str | None = None
    promoted_at: str = ""
    promote_history: tuple[str, ...] = ()
    reset_history: tuple[str, ...] = ()

    def to_data(self) -> dict[str, str]:
        """ConfigMap data (absent tokens are left out: ConfigMap values are strings)."""
        data = {
            _GENERATION: str(self.generation),
            _PARENT_CLAIM: self.parent_claim,
            _BUILDER_INDEX: str(self.builder_index),
            _BUILDER_CLAIM: self.builder_claim,
            _PROMOTED_AT: self.promoted_at,
            _PROMOTE_HISTORY: json.dumps(list(self.promote_history)),
            _RESET_HISTORY: json.dumps(list(self.reset_history)),
        }
        if self.promote_token is not None:
            data[_PROMOTE_TOKEN] = self.promote_token
        if self.reset_token is not None:
            data[_RESET_TOKEN] = self.reset_token
        return data

    @classmethod
    def from_data(cls, name: str, data: Mapping[str, str] | None) -> Pointer:
        """Read ConfigMap data; raise PointerError naming the object and the fix."""
        data = data or {}
        try:
            generation = int(data[_GENERATION])
            builder_index = int(data[_BUILDER_INDEX])
            promote_history = tuple(str(t) for t in json.loads(data.get(_PROMOTE_HISTORY, "[]")))
            reset_history = tuple(str(t) for t in json.loads(data.get(_RESET_HISTORY, "[]")))
            if generation < 1 or builder_index < 1:
                raise ValueError("generation and builderIndex start at 1")
            return cls(
                generation=generation,
                parent_claim=data[_PARENT_CLAIM],
                builder_index=builder_index,
                builder_claim=data[_BUILDER_CLAIM],
                promote_token=data.get(_PROMOTE_TOKEN),
                reset_token=data.get(_RESET_TOKEN),
                promoted_at=data.get(_PROMOTED_AT, ""),
                promote_history=promote_history,
                reset_history=reset_history,
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise PointerError(
                f"promotion pointer ConfigMap {name} is damaged ({exc!r} in {dict(data)}); "
                f"restore its keys {_GENERATION}, {_PARENT_CLAIM}, {_BUILDER_INDEX}, "
                f"{_BUILDER_CLAIM}, or delete it to start the lineage again at generation 1"
            ) from None

    def promote_applied(self, token: str) -> bool:
        """True if a promotion with ``token`` already happened."""
        return token == self.promote_token or token in self.promote_history

    def reset_applied(self, token: str) -> bool:
        """True if a builder reset with ``token`` already happened."""
        return token == self.reset_token or token in self.reset_history

    def promoted(self, cache: str, token: str | None, when: datetime) -> Pointer:
        """The pointer after promoting to the next generation with ``token``."""
        nxt = self.generation + 1
        return replace(
            self,
            generation=nxt,
            parent_claim=c.generation_name(cache, nxt),
            promote_token=token,
            promoted_at=format_time(when),
            promote_history=_remember(self.promote_history, token),
        )

    def reset(self, cache: str, token: str | None) -> Pointer:
        """The pointer after a builder reset to the next builder volume with ``token``."""
        nxt = self.builder_index + 1
        return replace(
            self,
            builder_index=nxt,
            builder_claim=c.builder_volume_name(cache, nxt),
            reset_token=token,
            reset_history=_remember(self.reset_history, token),
        )


def _remember(history: tuple[str, ...], token: str | None) -> tuple[str, ...]:
    if token is None:
        return history
    return (*[t for t in history if t != token], token)[-HISTORY_LENGTH:]


# --- Inventory: the objects promotion and garbage collection reason about --------------------


def _meta(obj: Mapping[str, Any]) -> JsonDict:
    meta: JsonDict = obj.get("metadata") or {}
    return meta


def _labels(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(_meta(obj).get("labels") or {})


def _annotations(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(_meta(obj).get("annotations") or {})


def _deleting(obj: Mapping[str, Any]) -> bool:
    return _meta(obj).get("deletionTimestamp") is not None


@dataclass(frozen=True, slots=True)
class Claim:
    """A PersistentVolumeClaim as far as promotion cares."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    phase: str | None = None
    volume_name: str | None = None
    #: (kind, name) of ``spec.dataSource`` or ``spec.dataSourceRef``: what it was cloned from.
    data_source: tuple[str, str] | None = None
    storage: str | None = None
    storage_class: str | None = None
    deleting: bool = False

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Claim:
        """Read a PVC object (dict)."""
        spec = obj.get("spec") or {}
        source = spec.get("dataSourceRef") or spec.get("dataSource") or None
        requests = (spec.get("resources") or {}).get("requests") or {}
        return cls(
            name=_meta(obj)["name"],
            labels=_labels(obj),
            annotations=_annotations(obj),
            phase=(obj.get("status") or {}).get("phase"),
            volume_name=spec.get("volumeName") or None,
            data_source=(source["kind"], source["name"]) if source else None,
            storage=requests.get("storage"),
            storage_class=spec.get("storageClassName"),
            deleting=_deleting(obj),
        )

    @property
    def bound(self) -> bool:
        """Bound to a volume and not being deleted."""
        return self.phase == "Bound" and bool(self.volume_name) and not self.deleting


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A VolumeSnapshot."""

    name: str
    uid: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    source_claim: str | None = None
    ready: bool = False
    restore_size: str | None = None
    error: str | None = None
    content_name: str | None = None
    deleting: bool = False

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Snapshot:
        """Read a VolumeSnapshot object (dict)."""
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        error = status.get("error") or {}
        return cls(
            name=_meta(obj)["name"],
            uid=_meta(obj).get("uid", ""),
            labels=_labels(obj),
            annotations=_annotations(obj),
            source_claim=(spec.get("source") or {}).get("persistentVolumeClaimName"),
            ready=bool(status.get("readyToUse")),
            restore_size=status.get("restoreSize"),
            error=error.get("message") if error else None,
            content_name=status.get("boundVolumeSnapshotContentName"),
            deleting=_deleting(obj),
        )

    def zfs_snapshot_name(self, handles: Mapping[str, str]) -> str:
        """Name of the ZFS snapshot behind it: the part after ``@`` of its content's
        snapshotHandle, or the CSI snapshotter's default ``snapshot-<uid>``."""
        handle = handles.get(self.content_name or "")
        if handle:
            return handle.rpartition("@")[2]
        return f"snapshot-{self.uid}"


@dataclass(frozen=True, slots=True)
class PodUse:
    """A pod and the claims its volumes name."""

    name: str
    phase: str | None
    claims: tuple[str, ...]
    deleting: bool = False

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> PodUse:
        """Read a Pod object (dict)."""
        volumes = (obj.get("spec") or {}).get("volumes") or []
        claims = tuple(
            v["persistentVolumeClaim"]["claimName"]
            for v in volumes
            if v.get("persistentVolumeClaim")
        )
        return cls(
            name=_meta(obj)["name"],
            phase=(obj.get("status") or {}).get("phase"),
            claims=claims,
            deleting=_deleting(obj),
        )

    @property
    def live(self) -> bool:
        """May still have its volumes mounted: not Succeeded or Failed (terminating counts)."""
        return self.phase not in TERMINAL_POD_PHASES


@dataclass(frozen=True, slots=True)
class ZfsVolume:
    """An OpenEBS ZFSVolume (one dataset); clones name their source volume in a label."""

    name: str
    source_volume: str | None = None
    snapname: str | None = None
    deleting: bool = False

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> ZfsVolume:
        """Read a ZFSVolume object (dict)."""
        return cls(
            name=_meta(obj)["name"],
            source_volume=_labels(obj).get(c.OPENEBS_SOURCE_VOLUME_LABEL),
            snapname=(obj.get("spec") or {}).get("snapname") or None,
            deleting=_deleting(obj),
        )


@dataclass(frozen=True, slots=True)
class ZfsSnapshot:
    """An OpenEBS ZFSSnapshot; its label names the volume (PV) it belongs to."""

    name: str
    volume: str | None = None
    deleting: bool = False

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> ZfsSnapshot:
        """Read a ZFSSnapshot object (dict)."""
        return cls(
            name=_meta(obj)["name"],
            volume=_labels(obj).get(c.OPENEBS_PERSISTENT_VOLUME_LABEL),
            deleting=_deleting(obj),
        )


@dataclass(frozen=True, slots=True)
class ConfigMapText:
    """A ConfigMap's name and all its data values, searched for claim names."""

    name: str
    text: str

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> ConfigMapText:
        """Read a ConfigMap object (dict)."""
        data = obj.get("data") or {}
        return cls(name=_meta(obj)["name"], text="\n".join(str(v) for v in data.values()))


@dataclass(frozen=True, slots=True)
class Inventory:
    """Everything in one namespace (and OpenEBS's namespace, ``storage.namespace``) that can
    refer to a cache's claims: read in one pass, then reasoned about without further API
    calls."""

    claims: tuple[Claim, ...] = ()
    snapshots: tuple[Snapshot, ...] = ()
    pods: tuple[PodUse, ...] = ()
    config_maps: tuple[ConfigMapText, ...] = ()
    zfs_volumes: tuple[ZfsVolume, ...] = ()
    zfs_snapshots: tuple[ZfsSnapshot, ...] = ()
    #: VolumeSnapshotContent name -> status.snapshotHandle (``<volume>@<zfs snapshot>``).
    snapshot_handles: Mapping[str, str] = field(default_factory=dict)

    def claim(self, name: str) -> Claim | None:
        """The claim called ``name``, if it exists."""
        return next((x for x in self.claims if x.name == name), None)

    def snapshot(self, name: str) -> Snapshot | None:
        """The VolumeSnapshot called ``name``, if it exists."""
        return next((x for x in self.snapshots if x.name == name), None)

    def cache_claims(self, cache: str, role: str) -> list[Claim]:
        """Claims labelled with ``cache`` and ``role``."""
        return [
            x
            for x in self.claims
            if x.labels.get(c.LABEL_CACHE) == cache and x.labels.get(c.LABEL_ROLE) == role
        ]

    def cache_snapshots(self, cache: str) -> list[Snapshot]:
        """Source snapshots of ``cache``'s generations."""
        return [
            x
            for x in self.snapshots
            if x.labels.get(c.LABEL_CACHE) == cache
            and x.labels.get(c.LABEL_ROLE) == c.ROLE_SOURCE_SNAPSHOT
        ]

    def claim_dependents(self, claim: Claim) -> list[str]:
        """Everything that still needs ``claim`` (or its dataset), one phrase each."""
        found: list[str] = []
        for other in self.claims:
            if other.name != claim.name and other.data_source == (
                "PersistentVolumeClaim",
                claim.name,
            ):
                found.append(f"PersistentVolumeClaim {other.name} is cloned from it")
        for pod in self.pods:
            if pod.live and claim.name in pod.claims:
                found.append(f"pod {pod.name} mounts it")
        for snap in self.snapshots:
            if snap.source_claim == claim.name:
                found.append(f"VolumeSnapshot {snap.name} is a snapshot of it")
        for cm in self.config_maps:
            if refers_to(cm.text, claim.name):
                found.append(f"ConfigMap {cm.name} refers to it")
        if claim.volume_name:
            pv = claim.volume_name
            for zv in self.zfs_volumes:
                # A PVC clone carries the source-volume label; a restore from a snapshot of the
                # dataset may only name it in spec.snapname (<volume>@<snapshot>).
                from_snapshot = bool(zv.snapname and zv.snapname.startswith(pv + "@"))
                if zv.name != pv and (zv.source_volume == pv or from_snapshot):
                    found.append(f"ZFSVolume {zv.name} is a clone of its dataset {pv}")
            for zs in self.zfs_snapshots:
                if zs.volume == pv:
                    found.append(f"ZFSSnapshot {zs.name} is a snapshot of its dataset {pv}")
        return found

    def snapshot_dependents(self, snap: Snapshot) -> list[str]:
        """Everything that still needs VolumeSnapshot ``snap`` (claims restored from it, and
        datasets cloned from its ZFS snapshot), one phrase each."""
        found = [
            f"PersistentVolumeClaim {other.name} is restored from it"
            for other in self.claims
            if other.data_source == ("VolumeSnapshot", snap.name)
        ]
        zfs_name = snap.zfs_snapshot_name(self.snapshot_handles)
        for zv in self.zfs_volumes:
            if zv.snapname and (zv.snapname == zfs_name or zv.snapname.endswith("@" + zfs_name)):
                found.append(f"ZFSVolume {zv.name} is a clone of its ZFS snapshot {zfs_name}")
        return found


def refers_to(text: str, name: str) -> bool:
    """True if ``name`` appears in ``text`` as a whole object name.

    ``gcc12-gen-1`` must not match inside ``gcc12-gen-12`` or ``gcc12-gen-1-src``: object names
    are made of ``[a-z0-9.-]``, so a reference is delimited by anything else.
    """
    pattern = rf"(?<![A-Za-z0-9.-]){re.escape(name)}(?![A-Za-z0-9.-])"
    return re.search(pattern, text) is not None


def generation_of(obj_name: str, labels: Mapping[str, str]) -> int | None:
    """Generation number of a parent claim or source snapshot (label first, then name)."""
    raw = labels.get(c.LABEL_GENERATION)
    if raw and raw.isdigit():
        return int(raw)
    match = _GENERATION_NAME.search(obj_name)
    return int(match["n"]) if match else None


def builder_index_of(obj_name: str) -> int | None:
    """Index M of a builder volume ``<cache>-work-<M>``."""
    match = _BUILDER_NAME.search(obj_name)
    return int(match["n"]) if match else None


def builder_users(pods: Iterable[PodUse], claim: str) -> list[str]:
    """Names of live pods whose volumes name ``claim`` (sorted)."""
    return sorted(p.name for p in pods if p.live and claim in p.claims)
