"""ArcZfsCache: the whole system of one stack, composed from the components."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

from components.arc_controller import ArcController, ArcControllerArgs
from components.build_cache import BuildCache, BuildCacheArgs
from components.config import ScaleSetConfig, StackConfig
from components.hook_extension import HookExtension, HookExtensionArgs
from components.hook_template import CacheMount
from components.runner_namespace import RunnerNamespace, RunnerNamespaceArgs
from components.runner_scale_set import RunnerScaleSet, RunnerScaleSetArgs
from components.zfs_storage import ZfsStorage, ZfsStorageArgs

__all__ = ["ArcZfsCache", "cache_mounts"]


class ArcZfsCache(pulumi.ComponentResource):
    """Storage, controller, caches with their promotions, hook templates and scale sets."""

    parent_claims: pulumi.Output[dict[str, str]]
    generations: pulumi.Output[dict[str, int]]
    scale_sets: pulumi.Output[list[str]]

    def __init__(
        self, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("arc-zfs-cache:stack:ArcZfsCache", name, None, opts)
        provider = k8s.Provider(
            f"{name}-cluster",
            kubeconfig=config.cluster.kubeconfig,
            context=config.cluster.context,
            enable_server_side_apply=True,
            # A promotion changes the hook ConfigMaps' content: update them in place. The
            # default replaces them (delete, then create under the same name), leaving a gap
            # in which a starting runner pod would find no template.
            enable_config_map_mutable=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        child = pulumi.ResourceOptions(parent=self, providers={"kubernetes": provider})
        storage = ZfsStorage(
            f"{name}-storage",
            ZfsStorageArgs(
                config.storage, config.images, sorted({x.node for x in config.caches.values()})
            ),
            opts=child,
        )
        controller = ArcController(
            f"{name}-controller",
            ArcControllerArgs(config.controller, config.images),
            opts=child,
        )
        namespaces = {
            ns: RunnerNamespace(
                f"{name}-ns-{ns}", RunnerNamespaceArgs(ns, pod_security, config.github), opts=child
            )
            for ns, pod_security in config.namespace_pod_security().items()
        }
        caches: dict[str, BuildCache] = {}
        for cache_name, cache in config.caches.items():
            caches[cache_name] = BuildCache(
                f"{name}-cache-{cache_name}",
                BuildCacheArgs(
                    name=cache_name,
                    config=cache,
                    cluster=config.cluster,
                    storage=config.storage,
                    storage_class=storage.storage_class_of(cache.node),
                    snapshot_class=storage.snapshot_class,
                ),
                # Claims need their namespace, and promotion the storage's driver, CRDs and
                # snapshot controller, none of which the components' outputs carry.
                opts=pulumi.ResourceOptions.merge(
                    child,
                    pulumi.ResourceOptions(depends_on=[storage, namespaces[cache.namespace]]),
                ),
            )
        for set_name, scale_set in config.scale_sets.items():
            node = config.node_of(scale_set)
            namespace = namespaces[scale_set.namespace]
            hook = HookExtension(
                f"{name}-hook-{set_name}",
                HookExtensionArgs(
                    scale_set=set_name,
                    namespace=namespace.name,
                    mounts=cache_mounts(config, scale_set, caches, storage.storage_class_of(node)),
                    resources=scale_set.job_resources.model_dump(exclude_defaults=False),
                    services=scale_set.services,
                ),
                opts=child,
            )
            RunnerScaleSet(
                f"{name}-scale-set-{set_name}",
                RunnerScaleSetArgs(
                    name=set_name,
                    config=scale_set,
                    chart=config.controller.scale_set_chart,
                    images=config.images,
                    github_config_url=config.github_url_of(scale_set),
                    node=node,
                    controller_namespace=controller.namespace,
                    controller_service_account=controller.service_account,
                    hook_config_map=hook.config_map_name,
                    github_ca_config_map=namespace.github_ca_config_map,
                    # A chart's objects do not wait for its values' inputs: name what must
                    # exist before a runner pod starts (its namespace with the credentials
                    # Secret, and the controller that reconciles the scale set).
                    depends_on=[hook, namespace, *controller.resources],
                ),
                opts=child,
            )
        self.parent_claims = pulumi.Output.all(
            **{n: b.parent_claim for n, b in caches.items()}
        ).apply(dict)
        self.generations = pulumi.Output.all(**{n: b.generation for n, b in caches.items()}).apply(
            dict
        )
        self.scale_sets = pulumi.Output.from_input(list(config.scale_sets))
        self.register_outputs(
            {
                "parent_claims": self.parent_claims,
                "generations": self.generations,
                "scale_sets": self.scale_sets,
            }
        )


def cache_mounts(
    config: StackConfig,
    scale_set: ScaleSetConfig,
    caches: Mapping[str, BuildCache],
    storage_class: pulumi.Input[str],
) -> list[CacheMount[pulumi.Input[str]]]:
    """A scale set's cache mounts: a clone of each listed cache's current parent, then the
    builder volume of the cache it builds, with the claims the caches' promotions return."""
    mounts: list[CacheMount[pulumi.Input[str]]] = [
        CacheMount(
            cache=mount.cache,
            claim=caches[mount.cache].parent_claim,
            size=config.caches[mount.cache].size,
            storage_class=storage_class,
            mount_path=mount.mount_path or config.caches[mount.cache].mount_path,
            env=config.caches[mount.cache].env,
        )
        for mount in scale_set.caches
    ]
    if scale_set.builds is not None:
        built = config.caches[scale_set.builds]
        mounts.append(
            CacheMount(
                cache=scale_set.builds,
                claim=caches[scale_set.builds].builder_claim,
                size=built.size,
                storage_class=storage_class,
                mount_path=built.mount_path,
                env=built.env,
                builder=True,
            )
        )
    return mounts
