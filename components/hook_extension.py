"""HookExtension: the ConfigMap whose ``content`` extends every job pod of a scale set."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import constants as c
from components._kube import labels
from components.hook_template import BuilderMount, CloneMount, hook_template, hook_template_yaml

__all__ = ["CacheClone", "HookExtension", "HookExtensionArgs"]


@dataclass(frozen=True, slots=True)
class CacheClone:
    """A cache to clone into the job pod; the parent claim comes from its promotion."""

    cache: str
    parent_claim: pulumi.Input[str]
    size: str
    mount_path: str
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HookExtensionArgs:
    """Inputs of :class:`HookExtension`."""

    scale_set: str
    namespace: str
    storage_class: str
    clones: Sequence[CacheClone] = ()
    builder: CacheClone | None = None
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
        claims = [clone.parent_claim for clone in args.clones]
        if args.builder is not None:
            claims.append(args.builder.parent_claim)

        def render(resolved: list[str]) -> str:
            clones = [
                CloneMount(
                    cache=clone.cache,
                    parent_claim=claim,
                    size=clone.size,
                    mount_path=clone.mount_path,
                    storage_class=args.storage_class,
                    env=clone.env,
                )
                for clone, claim in zip(args.clones, resolved, strict=False)
            ]
            builder = None
            if args.builder is not None:
                builder = BuilderMount(
                    cache=args.builder.cache,
                    claim=resolved[-1],
                    mount_path=args.builder.mount_path,
                    env=args.builder.env,
                )
            return hook_template_yaml(
                hook_template(args.scale_set, clones, builder, args.resources, args.services)
            )

        content = pulumi.Output.all(*claims).apply(lambda resolved: render(list(resolved)))
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
