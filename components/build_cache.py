"""BuildCache: one cache's root parent (fresh or imported dataset), builder volume, promotion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import pulumi
import pulumi_kubernetes as k8s

from components import constants as c
from components._kube import custom_object, metadata
from components.config import CacheConfig, ClusterConfig, StorageConfig, parse_quantity
from components.promotion import CachePromotion, CachePromotionArgs, manifests

__all__ = ["BuildCache", "BuildCacheArgs", "imported_volume_name", "openebs_capacity"]

_MI: Final = 2**20
_GI: Final = 2**30


@dataclass(frozen=True, slots=True)
class BuildCacheArgs:
    """Inputs of :class:`BuildCache`."""

    name: str
    config: CacheConfig
    #: Where promotion reaches the cluster (kubeconfig and context).
    cluster: ClusterConfig
    #: ``namespace`` is OpenEBS's: an imported dataset's ZFSVolume goes there, and
    #: promotion's garbage collection reads the ZFS objects there.
    storage: StorageConfig
    #: From :class:`ZfsStorage`'s outputs: the class of the cache's node, the snapshot class.
    storage_class: pulumi.Input[str]
    snapshot_class: pulumi.Input[str]


def openebs_capacity(size: str) -> int:
    """The byte size OpenEBS ZFS LocalPV gives a volume requested at ``size``.

    Its controller rounds every request up to a whole GiB (above 1 GiB) or MiB
    (``getRoundedCapacity``) and refuses a clone whose rounded request differs from the
    source's ``spec.capacity``: an imported dataset must declare the rounded size, since its
    clones request ``size``.
    """
    requested = parse_quantity(size)
    unit = _GI if requested > _GI else _MI
    return -(-requested // unit) * unit


def imported_volume_name(dataset: str) -> tuple[str, str]:
    """Split ``pool/path/volume`` into the OpenEBS ``(poolName, volume name)``."""
    pool, _, volume = dataset.rpartition("/")
    return pool, volume


class BuildCache(pulumi.ComponentResource):
    """A build cache: generation 1 of its parent, builder volume 1 and its promotion lineage.

    Generation 1 and builder volume 1 belong to the stack; later generations and builder
    volumes are created, and collected, by the CachePromotion resource.
    """

    parent_claim: pulumi.Output[str]
    builder_claim: pulumi.Output[str]
    generation: pulumi.Output[int]

    def __init__(
        self, name: str, args: BuildCacheArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("arc-zfs-cache:cache:BuildCache", name, None, opts)
        cfg = args.config
        cache = args.name
        child = pulumi.ResourceOptions(parent=self)
        root = c.generation_name(cache, 1)
        parent_labels = manifests.parent_labels(cache, 1)
        requests = {"storage": cfg.size}

        def claim_spec(**source: Any) -> k8s.core.v1.PersistentVolumeClaimSpecArgs:
            """A claim of the cache's size in its node's class; ``source`` binds or clones it."""
            return k8s.core.v1.PersistentVolumeClaimSpecArgs(
                access_modes=["ReadWriteOnce"],
                storage_class_name=args.storage_class,
                resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests=requests),
                **source,
            )

        if cfg.import_ is not None:
            pool, volume = imported_volume_name(cfg.import_.dataset)
            capacity = str(openebs_capacity(cfg.size))
            zfs_volume = custom_object(
                f"{name}-zfsvolume",
                c.ZFS_API_VERSION,
                "ZFSVolume",
                metadata(volume, args.storage.namespace, {c.LABEL_CACHE: cache}),
                manifests.imported_zfs_volume(pool=pool, capacity=capacity, node=cfg.node),
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
            )
            pv = k8s.core.v1.PersistentVolume(
                f"{name}-imported-pv",
                metadata=metadata(volume, None, {c.LABEL_CACHE: cache}),
                spec=k8s.core.v1.PersistentVolumeSpecArgs(
                    capacity={"storage": capacity},
                    access_modes=["ReadWriteOnce"],
                    persistent_volume_reclaim_policy="Retain",
                    storage_class_name=args.storage_class,
                    claim_ref=k8s.core.v1.ObjectReferenceArgs(namespace=cfg.namespace, name=root),
                    csi=k8s.core.v1.CSIPersistentVolumeSourceArgs(
                        driver=c.OPENEBS_ZFS_CSI_DRIVER, fs_type="zfs", volume_handle=volume
                    ),
                    node_affinity=_node_affinity(cfg.node),
                ),
                # The dataset is the team's data: deleting the stack never destroys it.
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[zfs_volume], retain_on_delete=True
                ),
            )
            root_pvc = k8s.core.v1.PersistentVolumeClaim(
                f"{name}-gen-1",
                metadata=metadata(root, cfg.namespace, parent_labels),
                spec=claim_spec(volume_name=pv.metadata.name),
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
            )
        else:
            root_pvc = k8s.core.v1.PersistentVolumeClaim(
                f"{name}-gen-1",
                # The node's class binds at once on that node: parents are never mounted.
                metadata=metadata(root, cfg.namespace, parent_labels),
                spec=claim_spec(),
                opts=pulumi.ResourceOptions(
                    parent=self, custom_timeouts=pulumi.CustomTimeouts(create="10m")
                ),
            )
        builder = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-work-1",
            metadata=metadata(
                c.builder_volume_name(cache, 1),
                cfg.namespace,
                manifests.builder_labels(cache),
            ),
            spec=claim_spec(
                data_source=k8s.core.v1.TypedLocalObjectReferenceArgs(
                    api_group="", kind="PersistentVolumeClaim", name=root_pvc.metadata.name
                )
            ),
            opts=child,
        )
        promotion = CachePromotion(
            f"{name}-promotion",
            CachePromotionArgs(
                namespace=cfg.namespace,
                cache=cache,
                root_claim=root_pvc.metadata.name,
                builder_volume=builder.metadata.name,
                size=cfg.size,
                node=cfg.node,
                parent_storage_class=args.storage_class,
                snapshot_class=args.snapshot_class,
                lease_duration=cfg.lease_duration,
                grace_period=cfg.grace_period,
                retention=cfg.retention,
                ready_timeout=cfg.ready_timeout,
                promote=cfg.promote,
                reset_builder=cfg.reset_builder,
                kubeconfig=args.cluster.kubeconfig,
                context=args.cluster.context,
                zfs_namespace=args.storage.namespace,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[root_pvc, builder]),
        )
        self.root_claim = root_pvc
        self.builder_volume = builder
        self.promotion = promotion
        self.parent_claim = promotion.parent_claim
        self.builder_claim = promotion.builder_claim
        self.generation = promotion.generation
        self.register_outputs(
            {
                "parent_claim": self.parent_claim,
                "builder_claim": self.builder_claim,
                "generation": self.generation,
            }
        )


def _node_affinity(node: str) -> k8s.core.v1.VolumeNodeAffinityArgs:
    return k8s.core.v1.VolumeNodeAffinityArgs(
        required=k8s.core.v1.NodeSelectorArgs(
            node_selector_terms=[
                k8s.core.v1.NodeSelectorTermArgs(
                    match_expressions=[
                        k8s.core.v1.NodeSelectorRequirementArgs(
                            key=c.OPENEBS_NODE_TOPOLOGY_KEY, operator="In", values=[node]
                        )
                    ]
                )
            ]
        )
    )
