"""ZfsStorage: OpenEBS ZFS LocalPV, the parent and clone storage classes, the snapshot class."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from components import constants as c
from components._kube import chart_args, custom_object, labels, metadata
from components.config import ImagesConfig, StorageConfig

__all__ = ["ZfsStorage", "ZfsStorageArgs", "zpool_script"]


@dataclass(frozen=True, slots=True)
class ZfsStorageArgs:
    """Inputs of :class:`ZfsStorage`."""

    config: StorageConfig
    images: ImagesConfig
    nodes: list[str]


def zpool_script(pool_name: str, devices: list[str], compression: str, recordsize: str) -> str:
    """Idempotent node preparation, guarded by existence checks.

    Creates the pool only if it does not exist, then the parent dataset of ``pool_name`` (a
    pool or ``pool/path``) only if missing, then sets the dataset properties (setting a
    property to its current value is a no-op).
    """
    q = shlex.quote
    pool = pool_name.split("/", maxsplit=1)[0]
    lines = [
        "set -eu",
        f"if ! zpool list -H -o name {q(pool)} >/dev/null 2>&1; then",
        f"  zpool create -o ashift=12 {q(pool)} {' '.join(q(d) for d in devices)}",
        "fi",
    ]
    if pool_name != pool:
        lines += [
            f"if ! zfs list -H -o name {q(pool_name)} >/dev/null 2>&1; then",
            f"  zfs create -p {q(pool_name)}",
            "fi",
        ]
    lines += [
        f"zfs set compression={q(compression)} {q(pool_name)}",
        f"zfs set recordsize={q(recordsize)} {q(pool_name)}",
    ]
    return "\n".join(lines) + "\n"


class ZfsStorage(pulumi.ComponentResource):
    """OpenEBS ZFS LocalPV (pinned chart, or an existing install) and its classes.

    One StorageClass per cache node, shared by parents, builder volumes and job clones: the
    CSI external-provisioner refuses a clone in another class than its source. It binds
    Immediately (parents are never mounted, and hook 0.7 pins job pods with ``spec.nodeName``,
    bypassing the scheduler) and its allowedTopologies put new parents on the cache's node;
    OpenEBS places every clone on its source's node.
    """

    storage_classes: pulumi.Output[dict[str, str]]
    snapshot_class: pulumi.Output[str]
    classes: list[pulumi.Resource]

    def __init__(
        self, name: str, args: ZfsStorageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("arc-zfs-cache:storage:ZfsStorage", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        installed: list[pulumi.Resource] = []
        if cfg.node_preparation is not None:
            prep = cfg.node_preparation
            key = prep.private_key.value
            for node, host in prep.hosts.items():
                installed.append(
                    command.remote.Command(
                        f"{name}-zpool-{node}",
                        connection=command.remote.ConnectionArgs(
                            host=host.host,
                            user=host.user,
                            port=host.port,
                            private_key=pulumi.Output.secret(key) if key else None,
                        ),
                        create=zpool_script(
                            cfg.pool_name,
                            host.devices,
                            cfg.compression,
                            cfg.recordsize,
                        ),
                        # Pools hold every cache generation: destroying the stack never
                        # destroys one (documented in the README).
                        delete=None,
                        opts=child,
                    )
                )
        if cfg.install:
            namespace = k8s.core.v1.Namespace(
                f"{name}-namespace",
                metadata=metadata(cfg.namespace),
                opts=child,
            )
            installed.append(
                k8s.helm.v4.Chart(
                    f"{name}-zfs-localpv",
                    chart_args(
                        cfg.chart,
                        release="zfs-localpv",
                        namespace=cfg.namespace,
                        values=self.chart_values(args),
                    ),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, *installed]),
                )
            )
        after_install = pulumi.ResourceOptions(parent=self, depends_on=installed)
        parameters = {
            "poolname": cfg.pool_name,
            "fstype": "zfs",
            "compression": cfg.compression,
            "recordsize": cfg.recordsize,
            "dedup": "off",
            # The hook mounts a builder volume in the job pod and in each container-action
            # step pod at once; OpenEBS refuses a second mount unless the volume is shared.
            # A clone copies its source's spec, so builder volumes inherit it from parents.
            "shared": "yes",
        }
        classes: list[pulumi.Resource] = []
        for node in args.nodes:
            classes.append(
                k8s.storage.v1.StorageClass(
                    f"{name}-{node}",
                    metadata=metadata(cfg.storage_class_for(node)),
                    provisioner=c.OPENEBS_ZFS_CSI_DRIVER,
                    parameters=parameters,
                    reclaim_policy="Delete",
                    volume_binding_mode="Immediate",
                    allow_volume_expansion=False,
                    allowed_topologies=[
                        k8s.core.v1.TopologySelectorTermArgs(
                            match_label_expressions=[
                                k8s.core.v1.TopologySelectorLabelRequirementArgs(
                                    key=c.OPENEBS_NODE_TOPOLOGY_KEY, values=[node]
                                )
                            ]
                        )
                    ],
                    opts=after_install,
                )
            )
        classes.append(
            custom_object(
                f"{name}-snapshot-class",
                f"{c.SNAPSHOT_API_GROUP}/{c.SNAPSHOT_API_VERSION}",
                "VolumeSnapshotClass",
                metadata(cfg.snapshot_class),
                {"driver": c.OPENEBS_ZFS_CSI_DRIVER, "deletionPolicy": "Delete"},
                opts=after_install,
            )
        )
        # Names stay known during preview (the policy pack reads them in hook templates);
        # consumers depend on this component for ordering.
        self.storage_classes = pulumi.Output.from_input(
            {node: cfg.storage_class_for(node) for node in args.nodes}
        )
        self.snapshot_class = pulumi.Output.from_input(cfg.snapshot_class)
        self.classes = classes
        self.register_outputs(
            {"storage_classes": self.storage_classes, "snapshot_class": self.snapshot_class}
        )

    def storage_class_of(self, node: str) -> pulumi.Output[str]:
        """The StorageClass of the caches on ``node`` (one of this component's nodes)."""
        return self.storage_classes.apply(lambda classes: classes[node])

    @staticmethod
    def chart_values(args: ZfsStorageArgs) -> dict[str, object]:
        """zfs-localpv chart values: snapshot CRDs and controller toggles, mirror, labels.

        The chart has no global registry: each image takes its own ``image.registry`` (a
        prefix ending in ``/``) in front of its repository path.
        """
        controller: dict[str, Any] = {
            "podLabels": labels(),
            "snapshotController": {"enabled": args.config.install_snapshot_controller},
        }
        node: dict[str, Any] = {"podLabels": labels()}
        values: dict[str, Any] = {
            "crds": {
                "zfsLocalPv": {"enabled": True},
                "csi": {"volumeSnapshots": {"enabled": args.config.install_snapshot_crds}},
            },
            "zfsNode": node,
            "zfsController": controller,
        }
        if args.images.registry:
            prefix = args.images.registry.rstrip("/") + "/"
            for sidecar in c.OPENEBS_ZFS_CONTROLLER_SIDECARS:
                controller.setdefault(sidecar, {})["image"] = {"registry": prefix}
            node[c.OPENEBS_ZFS_NODE_REGISTRAR] = {"image": {"registry": prefix}}
            values[c.OPENEBS_ZFS_PLUGIN] = {"image": {"registry": prefix}}
        if args.images.pull_secrets:
            values["imagePullSecrets"] = [{"name": s} for s in args.images.pull_secrets]
        return values
