"""Each component alone under Pulumi mocks: its inputs, the objects it declares, its outputs.

tests/test_components.py checks the same objects through the whole stack; these tests build
one component with hand-made inputs, so a component's contract is checked without the others.
"""

from __future__ import annotations

from typing import Any

import pulumi
import yaml

from components import constants as c
from components.arc_controller import ArcController, ArcControllerArgs
from components.build_cache import BuildCache, BuildCacheArgs
from components.config import (
    ArcControllerConfig,
    CacheConfig,
    ClusterConfig,
    GithubConfig,
    ImagesConfig,
    PodSecurityConfig,
    ScaleSetConfig,
    SecretValue,
    StorageConfig,
    validate_config,
)
from components.hook_extension import HookExtension, HookExtensionArgs
from components.hook_template import CacheMount
from components.runner_namespace import RunnerNamespace, RunnerNamespaceArgs
from components.runner_scale_set import RunnerScaleSet, RunnerScaleSetArgs
from components.zfs_storage import ZfsStorage, ZfsStorageArgs
from tests.harness import PROMOTION_TYPE, run_under_mocks

CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
GITHUB = GithubConfig.model_validate(
    {"url": "https://github.com/acme", "credentials": {"token": SecretValue("ghp_unit")}}
)


def test_zfs_storage_returns_each_nodes_storage_class() -> None:
    storage_config = StorageConfig(storage_class_prefix="zfs")

    def build() -> pulumi.Output[Any]:
        storage = ZfsStorage("s", ZfsStorageArgs(storage_config, ImagesConfig(), ["n1", "n2"]))
        return pulumi.Output.all(
            storage.storage_class_of("n2"), storage.storage_classes, storage.snapshot_class
        )

    deployment, (of_n2, classes, snapshot_class) = run_under_mocks(build)
    assert of_n2 == "zfs-n2"
    assert classes == {"n1": "zfs-n1", "n2": "zfs-n2"}
    assert snapshot_class == storage_config.snapshot_class
    declared = deployment.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
    assert sorted(r.k8s_name or "" for r in declared) == ["zfs-n1", "zfs-n2"]


def test_arc_controller_returns_its_namespace_and_service_account() -> None:
    config = ArcControllerConfig(namespace="ctl", release_name="rel")

    def build() -> pulumi.Output[Any]:
        controller = ArcController("ctl", ArcControllerArgs(config, ImagesConfig()))
        return pulumi.Output.all(controller.namespace, controller.service_account)

    _, (namespace, service_account) = run_under_mocks(build)
    assert namespace == "ctl"
    assert service_account == c.controller_service_account_name("rel")


def test_runner_namespace_returns_the_ca_config_map_only_with_a_ca_bundle() -> None:
    with_ca = GITHUB.model_copy(update={"ca_bundle": "-----BEGIN CERTIFICATE-----\nx"})

    def build(github: GithubConfig) -> pulumi.Output[Any]:
        ns = RunnerNamespace("ns", RunnerNamespaceArgs("runners", PodSecurityConfig(), github))
        return pulumi.Output.all(ns.name, ns.github_secret, ns.github_ca_config_map)

    deployment, (name, secret, ca) = run_under_mocks(lambda: build(with_ca))
    assert (name, secret, ca) == ("runners", c.GITHUB_SECRET_NAME, c.GITHUB_CA_CONFIG_MAP)
    assert deployment.object(CONFIG_MAP, c.GITHUB_CA_CONFIG_MAP)["data"] == {
        c.GITHUB_CA_KEY: "-----BEGIN CERTIFICATE-----\nx"
    }
    deployment, (_, _, ca) = run_under_mocks(lambda: build(GITHUB))
    assert ca is None and deployment.of_type(CONFIG_MAP) == []


def test_hook_extension_finds_the_builder_mount_by_its_role_not_its_position() -> None:
    builder: CacheMount[pulumi.Input[str]] = CacheMount(
        cache="gcc12",
        claim="gcc12-work-3",
        size="1Gi",
        storage_class="sc",
        mount_path="/CONAN_HOME",
        builder=True,
    )

    def build() -> pulumi.Output[Any]:
        clone: CacheMount[pulumi.Input[str]] = CacheMount(
            cache="clang17",
            claim=pulumi.Output.from_input("clang17-gen-2"),
            size="2Gi",
            storage_class=pulumi.Output.from_input("sc"),
            mount_path="/CLANG",
        )
        hook = HookExtension("hook", HookExtensionArgs("linux", "runners", mounts=[builder, clone]))
        return pulumi.Output.all(hook.config_map_name, hook.content)

    deployment, (name, content) = run_under_mocks(build)
    assert name == c.hook_template_name("linux")
    assert deployment.object(CONFIG_MAP, name)["data"] == {c.HOOK_TEMPLATE_KEY: content}
    volumes = {v["name"]: v for v in yaml.safe_load(content)["spec"]["volumes"]}
    builder_volume = volumes[f"{c.CACHE_CLONE_VOLUME_PREFIX}gcc12"]
    assert builder_volume["persistentVolumeClaim"] == {"claimName": "gcc12-work-3"}
    clone_spec = volumes[f"{c.CACHE_CLONE_VOLUME_PREFIX}clang17"]["ephemeral"][
        "volumeClaimTemplate"
    ]["spec"]
    assert clone_spec["dataSource"]["name"] == "clang17-gen-2"
    assert clone_spec["resources"]["requests"]["storage"] == "2Gi"


def test_runner_scale_set_builds_the_runner_pod_from_the_names_it_is_given() -> None:
    scale_set = ScaleSetConfig.model_validate(
        {"namespace": "runners", "caches": ["gcc12"], "maxRunners": 3}
    )

    def build() -> pulumi.Output[Any]:
        runners = RunnerScaleSet(
            "rs",
            RunnerScaleSetArgs(
                name="linux",
                config=scale_set,
                chart=ArcControllerConfig().scale_set_chart,
                images=ImagesConfig(),
                github_config_url="https://github.com/acme",
                node="n1",
                controller_namespace=pulumi.Output.from_input("ctl"),
                controller_service_account=pulumi.Output.from_input("ctl-sa"),
                hook_config_map=pulumi.Output.from_input("hook-from-output"),
                github_ca_config_map=pulumi.Output.from_input("ca-from-output"),
            ),
        )
        return runners.values

    deployment, values = run_under_mocks(build)
    assert deployment.chart("linux")["values"] == values
    assert values["controllerServiceAccount"] == {"namespace": "ctl", "name": "ctl-sa"}
    assert values["maxRunners"] == 3
    spec = values["template"]["spec"]
    assert {"name": c.HOOK_TEMPLATE_VOLUME, "configMap": {"name": "hook-from-output"}} in spec[
        "volumes"
    ]
    assert spec["nodeSelector"] == {"kubernetes.io/hostname": "n1"}
    assert values["githubServerTLS"]["certificateFrom"]["configMapKeyRef"]["name"] == (
        "ca-from-output"
    )


def test_namespace_pod_security_rule(minimal_raw: dict[str, Any]) -> None:
    minimal_raw["caches"]["kept"] = {
        "namespace": "caches-only",
        "node": "node-a",
        "size": "1Gi",
        "mountPath": "/KEPT",
    }
    minimal_raw["scaleSets"]["linux"]["podSecurity"] = {"level": "baseline", "reason": "why"}
    levels = validate_config(minimal_raw).namespace_pod_security()
    # A namespace with only caches runs no pod: restricted, not the first scale set's level.
    assert levels["caches-only"] == PodSecurityConfig()
    # One baseline scale set makes its namespace baseline, whatever the order of the others.
    assert (levels["arc-runners"].level, levels["arc-runners"].reason) == ("baseline", "why")
    minimal_raw["scaleSets"] = dict(reversed(list(minimal_raw["scaleSets"].items())))
    assert validate_config(minimal_raw).namespace_pod_security() == levels


def test_build_cache_puts_the_given_classes_on_its_claims_and_promotion() -> None:
    cache = CacheConfig(node="n1", size="1Gi", mount_path="/CACHE", namespace="runners")

    def build() -> pulumi.Output[Any]:
        built = BuildCache(
            "cache",
            BuildCacheArgs(
                name="gcc12",
                config=cache,
                cluster=ClusterConfig(context="ctx"),
                storage=StorageConfig(namespace="zfs-ns"),
                storage_class=pulumi.Output.from_input("class-from-output"),
                snapshot_class=pulumi.Output.from_input("snapshots-from-output"),
            ),
        )
        return pulumi.Output.all(built.parent_claim, built.builder_claim, built.generation)

    deployment, (parent, builder, generation) = run_under_mocks(build)
    assert (parent, builder, generation) == (
        c.generation_name("gcc12", 1),
        c.builder_volume_name("gcc12", 1),
        1,
    )
    claims = deployment.of_type("kubernetes:core/v1:PersistentVolumeClaim")
    assert {r.inputs["spec"]["storageClassName"] for r in claims} == {"class-from-output"}
    (promotion,) = deployment.of_type(PROMOTION_TYPE)
    assert promotion.inputs["parent_storage_class"] == "class-from-output"
    assert promotion.inputs["snapshot_class"] == "snapshots-from-output"
    assert (promotion.inputs["context"], promotion.inputs["zfs_namespace"]) == ("ctx", "zfs-ns")
