"""Cross-field rules of the stack config: what one section says about another.

Pure: given the validated caches and scale sets, list every problem at once (a user fixes them
all in one pass), each with the key path as ``pulumi config set --path`` spells it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from components import constants as c
from components.config.caches import CacheConfig
from components.config.errors import ConfigProblem
from components.config.scalars import parse_quantity
from components.config.scale_sets import ScaleSetConfig

__all__ = ["cross_reference_problems"]


def cross_reference_problems(
    caches: Mapping[str, CacheConfig], scale_sets: Mapping[str, ScaleSetConfig]
) -> list[ConfigProblem]:
    """Every problem between the scale sets and the caches they mount or build."""
    builders: dict[str, str] = {}
    problems: list[ConfigProblem] = []
    for name, scale_set in scale_sets.items():
        problems.extend(_scale_set_problems(caches, name, scale_set, builders))
        problems.extend(_container_mode_problems(name, scale_set, scale_sets))
    return problems


def _container_mode_problems(
    name: str, scale_set: ScaleSetConfig, scale_sets: Mapping[str, ScaleSetConfig]
) -> Iterator[ConfigProblem]:
    """What ``kubernetes-novolume`` (hook 0.8) cannot have.

    Hook 0.8's job pod has an ``fs-init`` init container that sets only runAsUser/runAsGroup
    (runner-container-hooks v0.8.1 ``createJobPod``), so Pod Security ``restricted`` rejects
    every job pod; a template ``initContainers`` would replace it wholesale, dropping the
    workspace set-up. A namespace enforces ``baseline`` as soon as one of its scale sets asks
    for it (``StackConfig.namespace_pod_security``), else ``restricted``.
    """
    if scale_set.container_mode != c.CONTAINER_MODE_NOVOLUME:
        return
    path = f"scaleSets.{name}"
    baseline = any(
        config.namespace == scale_set.namespace and config.pod_security.level == "baseline"
        for config in scale_sets.values()
    )
    if not baseline:
        yield ConfigProblem(
            f"{path}.containerMode",
            f"is {c.CONTAINER_MODE_NOVOLUME} but namespace {scale_set.namespace!r} enforces Pod "
            "Security restricted (no scale set in it sets podSecurity.level baseline): hook 0.8 "
            f"gives every job pod an {c.NOVOLUME_HOOK_INIT_CONTAINER!r} init container without "
            "allowPrivilegeEscalation: false or capabilities drop ALL, which restricted rejects",
            f"{path}.podSecurity: {{level: baseline, reason: ...}}, or containerMode: "
            f"{c.CONTAINER_MODE_KUBERNETES}",
        )
    if scale_set.use_kube_scheduler:
        yield ConfigProblem(
            f"{path}.useKubeScheduler",
            f"is a hook 0.7 setting; with containerMode {c.CONTAINER_MODE_NOVOLUME} (hook 0.8) "
            "the scheduler always places job pods",
            "remove useKubeScheduler",
        )
    if "work_volume" in scale_set.model_fields_set:
        yield ConfigProblem(
            f"{path}.workVolume",
            f"is set but containerMode {c.CONTAINER_MODE_NOVOLUME} has no work volume (hook 0.8 "
            "copies the workspace into the job pod)",
            "remove workVolume",
        )


def _scale_set_problems(
    caches: Mapping[str, CacheConfig],
    name: str,
    scale_set: ScaleSetConfig,
    builders: dict[str, str],
) -> Iterator[ConfigProblem]:
    path = f"scaleSets.{name}"
    known = ", ".join(sorted(caches))
    if scale_set.min_runners > scale_set.max_runners:
        yield ConfigProblem(
            f"{path}.minRunners",
            f"minRunners ({scale_set.min_runners}) is greater than maxRunners "
            f"({scale_set.max_runners})",
            f"minRunners: 0, maxRunners: {scale_set.max_runners}",
        )
    nodes: dict[str, str] = {}
    used: list[tuple[str, str]] = [
        (f"{path}.caches[{i}].cache", mount.cache) for i, mount in enumerate(scale_set.caches)
    ]
    if scale_set.builds is not None:
        used.append((f"{path}.builds", scale_set.builds))
    for key, cache_name in used:
        cache = caches.get(cache_name)
        if cache is None:
            yield ConfigProblem(
                key, f"names cache {cache_name!r}, which is not declared under caches", known
            )
            continue
        nodes[cache_name] = cache.node
        if cache.namespace != scale_set.namespace:
            yield ConfigProblem(
                f"{path}.namespace",
                f"is {scale_set.namespace!r} but cache {cache_name!r} lives in "
                f"{cache.namespace!r}: a clone's dataSource must be in the job pod's namespace",
                cache.namespace,
            )
    for i, mount in enumerate(scale_set.caches):
        cache = caches.get(mount.cache)
        if cache and mount.size and parse_quantity(mount.size) != parse_quantity(cache.size):
            yield ConfigProblem(
                f"{path}.caches[{i}].size",
                f"is {mount.size} but its parent caches.{mount.cache}.size is {cache.size}: "
                "OpenEBS ZFS clones must request exactly the parent's size",
                f"{cache.size} (or leave it out)",
            )
    distinct = sorted(set(nodes.values()))
    if len(distinct) > 1:
        yield ConfigProblem(
            f"{path}.caches",
            "mounts caches on different nodes ("
            + ", ".join(f"{k} on {v}" for k, v in sorted(nodes.items()))
            + "): ZFS clones are node-local, so one runner pod cannot reach them all",
            "split it into one scale set per node",
        )
    elif distinct and scale_set.node is not None and scale_set.node != distinct[0]:
        yield ConfigProblem(
            f"{path}.node",
            f"pins runners to {scale_set.node!r} but its caches live on {distinct[0]!r}",
            distinct[0],
        )
    if scale_set.builds is not None:
        if scale_set.max_runners != 1:
            yield ConfigProblem(
                f"{path}.maxRunners",
                f"is {scale_set.max_runners} but a builder scale set (builds: "
                f"{scale_set.builds}) may run one job at a time on its builder volume",
                "1",
            )
        other = builders.setdefault(scale_set.builds, name)
        if other != name:
            yield ConfigProblem(
                f"{path}.builds",
                f"cache {scale_set.builds!r} already has builder scale set {other!r}",
                "one builder scale set per cache",
            )
        if scale_set.builds in {m.cache for m in scale_set.caches}:
            yield ConfigProblem(
                f"{path}.caches",
                f"also lists {scale_set.builds!r}, which it builds: a builder mounts its "
                "builder volume, not a clone",
                f"remove {scale_set.builds!r} from caches",
            )
    for i, service in enumerate(scale_set.services):
        if service == c.JOB_CONTAINER_NAME.removeprefix("$"):
            yield ConfigProblem(
                f"{path}.services[{i}]",
                "'job' is the hook's name for the job container, not a service",
                "the service image's last path part, e.g. redis",
            )
        elif scale_set.services.index(service) != i:
            yield ConfigProblem(
                f"{path}.services[{i}]", f"lists {service!r} twice", "each service once"
            )
    if not scale_set.caches and scale_set.builds is None:
        yield ConfigProblem(
            f"{path}.caches",
            "mounts no cache and builds none",
            f"caches: [{next(iter(caches))}]",
        )
