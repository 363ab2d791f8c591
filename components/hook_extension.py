"""HookExtension: the ConfigMap whose ``content`` extends every job pod of a scale set."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import constants as c
from components._kube import labels
from components.hook_template import CacheMount, hook_template, hook_template_yaml

__all__ = ["HookExtension", "HookExtensionArgs"]


@dataclass(frozen=True, slots=True)
class HookExtensionArgs:
    """Inputs of :class:`HookExtension`: the scale set's cache mounts, claims still inputs."""

    scale_set: str
    namespace: pulumi.Input[str]
    mounts: Sequence[CacheMount[pulumi.Input[str]]] = ()
    resources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    services: Sequence[str] = ()


class HookExtension(pulumi.ComponentResource):
    """The hook-template ConfigMap, re-rendered whenever a cache's parent claim moves.

    Runner pods mount it as a directory, so kubelet delivers the new content to running
    runners without restarting them.
    """

    config_map_name: pulumi.Output[str]
    content: pulumi.Output[str]

    def __init__(
        self, name: str, args: HookExtensionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("arc-zfs-cache:hook:HookExtension", name, None, opts)
        resolved = [
            pulumi.Output.all(m.claim, m.storage_class).apply(functools.partial(_resolve, m))
            for m in args.mounts
        ]
        content = pulumi.Output.all(*resolved).apply(
            lambda mounts: hook_template_yaml(
                hook_template(args.scale_set, mounts, args.resources, args.services)
            )
        )
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-config-map",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=c.hook_template_name(args.scale_set),
                namespace=args.namespace,
                labels=labels(**{c.LABEL_HOOK_TEMPLATE: "true", c.LABEL_SCALE_SET: args.scale_set}),
            ),
            data={c.HOOK_TEMPLATE_KEY: content},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.config_map_name = config_map.metadata.name
        self.content = content
        self.register_outputs({"config_map_name": self.config_map_name, "content": content})


def _resolve(mount: CacheMount[pulumi.Input[str]], names: list[str]) -> CacheMount[str]:
    claim, storage_class = names
    return CacheMount(
        cache=mount.cache,
        claim=claim,
        size=mount.size,
        storage_class=storage_class,
        mount_path=mount.mount_path,
        env=mount.env,
        builder=mount.builder,
    )
