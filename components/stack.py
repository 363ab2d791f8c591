"""ArcZfsCache: the whole system of one stack, composed from the components."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components import constants as c
from components.arc_controller import ArcController, ArcControllerArgs
from components.build_cache import BuildCache, BuildCacheArgs
from components.config import StackConfig
from components.hook_extension import CacheClone, HookExtension, HookExtensionArgs
from components.hook_template import mirror_image, scale_set_values
from components.runner_namespace import RunnerNamespace, RunnerNamespaceArgs
from components.runner_scale_set import RunnerScaleSet, RunnerScaleSetArgs
from components.zfs_storage import ZfsStorage, ZfsStorageArgs

__all__ = ["ArcZfsCache"]


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
        namespaces: dict[str, RunnerNamespace] = {}
        used = {s.namespace: s.pod_security for s in config.scale_sets.values()}
        for cache in config.caches.values():
            used.setdefault(cache.namespace, next(iter(config.scale_sets.values())).pod_security)
        for ns, pod_security in sorted(used.items()):
            namespaces[ns] = RunnerNamespace(
                f"{name}-ns-{ns}",
                RunnerNamespaceArgs(ns, pod_security, config.github),
                opts=child,
            )
        caches: dict[str, BuildCache] = {}
        for cache_name, cache in config.caches.items():
            caches[cache_name] = BuildCache(
                f"{name}-cache-{cache_name}",
                BuildCacheArgs(
                    name=cache_name,
                    config=cache,
                    pool_name=config.storage.pool_name,
                    storage_class=config.storage.storage_class_for(cache.node),
                    snapshot_class=config.storage.snapshot_class,
                    kubeconfig=config.cluster.kubeconfig,
                    context=config.cluster.context,
                    zfs_namespace=config.storage.namespace,
                ),
                opts=pulumi.ResourceOptions.merge(
                    child,
                    pulumi.ResourceOptions(depends_on=[storage, namespaces[cache.namespace]]),
                ),
            )
        for set_name, scale_set in config.scale_sets.items():
            clones = [
                CacheClone(
                    cache=mount.cache,
                    parent_claim=caches[mount.cache].parent_claim,
                    size=config.caches[mount.cache].size,
                    mount_path=mount.mount_path or config.caches[mount.cache].mount_path,
                    env=config.caches[mount.cache].env,
                )
                for mount in scale_set.caches
            ]
            builder = None
            if scale_set.builds is not None:
                built = config.caches[scale_set.builds]
                builder = CacheClone(
                    cache=scale_set.builds,
                    parent_claim=caches[scale_set.builds].builder_claim,
                    size=built.size,
                    mount_path=built.mount_path,
                    env=built.env,
                )
            resources = scale_set.job_resources.model_dump(exclude_defaults=False)
            hook = HookExtension(
                f"{name}-hook-{set_name}",
                HookExtensionArgs(
                    scale_set=set_name,
                    namespace=scale_set.namespace,
                    storage_class=config.storage.storage_class_for(config.node_of(scale_set)),
                    clones=clones,
                    builder=builder,
                    resources=resources,
                    services=scale_set.services,
                ),
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(depends_on=[namespaces[scale_set.namespace]])
                ),
            )
            namespace = namespaces[scale_set.namespace]
            values = scale_set_values(
                name=set_name,
                github_config_url=config.github_url_of(scale_set),
                runner_group=scale_set.runner_group,
                min_runners=scale_set.min_runners,
                max_runners=scale_set.max_runners,
                runner_image=mirror_image(scale_set.runner_image, config.images.registry),
                node=config.node_of(scale_set),
                controller_namespace=config.controller.namespace,
                controller_service_account=c.controller_service_account_name(
                    config.controller.release_name
                ),
                work_volume_size=scale_set.work_volume.size,
                work_volume_storage_class=scale_set.work_volume.storage_class,
                image_pull_secrets=config.images.pull_secrets,
                github_ca_config_map=c.GITHUB_CA_CONFIG_MAP if config.github.ca_bundle else None,
                use_kube_scheduler=scale_set.use_kube_scheduler,
            )
            RunnerScaleSet(
                f"{name}-scale-set-{set_name}",
                RunnerScaleSetArgs(
                    name=set_name,
                    namespace=scale_set.namespace,
                    chart=config.controller.scale_set_chart,
                    values=values,
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
