"""What ARC 0.14.2, the runner image and OpenEBS ZFS LocalPV would reject, decided offline."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from components import constants as c
from components.build_cache import openebs_capacity
from components.config import ConfigError, parse_quantity, validate_config
from components.hook_template import hook_template
from policy.arc_policy.hook_merge import effective_job_pod
from scripts import record_chart_cases, record_upstream_charts
from tests.harness import deploy, runner_env
from tests.harness import scale_set_chart_values as values

# --- (1) listener, (9) names and labels -----------------------------------------------------


def test_scale_set_gives_the_listener_a_restricted_security_context() -> None:
    template = values()["listenerTemplate"]
    assert template["spec"]["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    (listener,) = template["spec"]["containers"]
    assert listener["name"] == c.LISTENER_CONTAINER_NAME
    assert listener["securityContext"]["allowPrivilegeEscalation"] is False
    assert listener["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert template["spec"]["terminationGracePeriodSeconds"] == 60


@pytest.mark.parametrize(
    ("release", "expected"),
    [
        ("arc", "arc-gha-rs-controller"),
        ("gha-rs-controller", "gha-rs-controller"),
        ("ci-gha-rs-controller-1", "ci-gha-rs-controller-1"),
        ("a" * 50, ("a" * 50 + "-gha-rs-controller")[:63]),
        ("a" * 62, "a" * 62),  # truncated to 63, then the trailing "-" trimmed
    ],
)
def test_controller_service_account_follows_the_chart_fullname(release: str, expected: str) -> None:
    assert c.controller_service_account_name(release) == expected


def test_controller_pod_labels_do_not_repeat_the_charts_part_of(
    minimal_raw: dict[str, Any],
) -> None:
    controller = deploy(validate_config(minimal_raw)).chart("arc")["values"]
    assert c.LABEL_PART_OF not in controller["podLabels"]
    assert controller["securityContext"]["allowPrivilegeEscalation"] is False


# --- (2) runner image -------------------------------------------------------------------------


def test_runner_default_is_registrable(minimal_raw: dict[str, Any]) -> None:
    config = validate_config(minimal_raw)
    assert all(s.runner_image == c.RUNNER_IMAGE for s in config.scale_sets.values())
    assert c.RUNNER_IMAGE.endswith(":" + c.RUNNER_VERSION)


@pytest.mark.parametrize("tag", ["2.324.0", "2.328.9", "v2.300.0"])
def test_runner_too_old_for_github_is_refused(minimal_raw: dict[str, Any], tag: str) -> None:
    minimal_raw["scaleSets"]["linux"]["runnerImage"] = f"ghcr.io/actions/actions-runner:{tag}"
    with pytest.raises(ConfigError) as error:
        validate_config(minimal_raw)
    (problem,) = error.value.problems
    assert problem.path == "scaleSets.linux.runnerImage"
    assert "older than 2.329.0" in problem.message and c.RUNNER_IMAGE in problem.message


def test_custom_runner_images_and_new_versions_pass(minimal_raw: dict[str, Any]) -> None:
    for image in ("registry.acme/ci/runner:1.0.0", "ghcr.io/actions/actions-runner:2.329.0"):
        minimal_raw["scaleSets"]["linux"]["runnerImage"] = image
        validate_config(minimal_raw)


# --- (6) job start cost -------------------------------------------------------------------------


def test_kube_scheduler_option(minimal_raw: dict[str, Any]) -> None:
    assert "ACTIONS_RUNNER_USE_KUBE_SCHEDULER" not in runner_env(values())
    assert runner_env(values(use_kube_scheduler=True))["ACTIONS_RUNNER_USE_KUBE_SCHEDULER"] == (
        "true"
    )
    minimal_raw["scaleSets"]["linux"]["useKubeScheduler"] = True
    chart = deploy(validate_config(minimal_raw)).chart("linux")["values"]
    assert runner_env(chart)["ACTIONS_RUNNER_USE_KUBE_SCHEDULER"] == "true"


def test_fs_group_change_policy_reaches_job_and_runner_pods() -> None:
    template = hook_template("linux", [])
    assert template["spec"]["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    runner = values()["template"]["spec"]["securityContext"]
    assert runner["fsGroupChangePolicy"] == "OnRootMismatch"


# --- (4) service containers ---------------------------------------------------------------------


def test_declared_services_get_the_job_security_context(minimal_raw: dict[str, Any]) -> None:
    minimal_raw["scaleSets"]["linux"]["services"] = ["redis", "postgres"]
    deployment = deploy(validate_config(minimal_raw))
    content = deployment.object("kubernetes:core/v1:ConfigMap", c.hook_template_name("linux"))
    template = yaml.safe_load(content["data"][c.HOOK_TEMPLATE_KEY])
    names = [entry["name"] for entry in template["spec"]["containers"]]
    assert names == ["$job", "$redis", "$postgres"]
    pod = effective_job_pod(template, services=["redis:7", "ghcr.io/acme/postgres:16"])
    for container in pod["spec"]["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["capabilities"] == {"drop": ["ALL"]}, container["name"]


@pytest.mark.parametrize(
    ("services", "path", "text"),
    [
        (["job"], "scaleSets.linux.services[0]", "job container"),
        (["redis", "redis"], "scaleSets.linux.services[1]", "twice"),
    ],
)
def test_bad_services_are_refused(
    minimal_raw: dict[str, Any], services: list[str], path: str, text: str
) -> None:
    minimal_raw["scaleSets"]["linux"]["services"] = services
    with pytest.raises(ConfigError) as error:
        validate_config(minimal_raw)
    (problem,) = error.value.problems
    assert problem.path == path and text in problem.message


# --- (5) GitHub Enterprise CA -------------------------------------------------------------------


def test_ghes_ca_needs_no_sudo() -> None:
    rendered = values(github_ca_config_map=c.GITHUB_CA_CONFIG_MAP)
    env = runner_env(rendered)
    # The chart adds RUNNER_UPDATE_CA_CERTS=1 unless it is set; run.sh tests it with -z.
    assert env["RUNNER_UPDATE_CA_CERTS"] == ""
    assert env["SSL_CERT_DIR"] == f"{c.SYSTEM_CA_DIR}:{c.GITHUB_CA_DIR}"
    assert rendered["githubServerTLS"]["runnerMountPath"] == c.GITHUB_CA_DIR
    assert "RUNNER_UPDATE_CA_CERTS" not in runner_env(values())


# --- (3) step pods, (8) OpenEBS -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("400Gi", 400 * 2**30),
        ("500G", 466 * 2**30),
        ("1G", 954 * 2**20),
        ("1Gi", 2**30),
        ("1073741825", 2 * 2**30),
        ("100M", 96 * 2**20),
    ],
)
def test_openebs_capacity_rounds_like_the_controller(size: str, expected: int) -> None:
    assert openebs_capacity(size) == expected
    assert openebs_capacity(size) >= parse_quantity(size)


def test_imported_dataset_declares_the_rounded_capacity(minimal_raw: dict[str, Any]) -> None:
    minimal_raw["caches"]["gcc12"]["size"] = "500G"
    minimal_raw["caches"]["gcc12"]["import"] = {"dataset": "zfspv-pool/gcc12-main"}
    minimal_raw["scaleSets"]["linux"].pop("caches", None)
    minimal_raw["scaleSets"]["linux"]["caches"] = ["gcc12"]
    deployment = deploy(validate_config(minimal_raw))
    volume = deployment.object("kubernetes:zfs.openebs.io/v1:ZFSVolume", "gcc12-main")
    assert volume["spec"]["capacity"] == str(466 * 2**30)
    pv = deployment.object("kubernetes:core/v1:PersistentVolume", "gcc12-main")
    assert pv["spec"]["capacity"] == {"storage": str(466 * 2**30)}


def test_snapshot_controller_toggle(minimal_raw: dict[str, Any]) -> None:
    chart = deploy(validate_config(minimal_raw)).chart("zfs-localpv")
    assert chart["version"] == c.OPENEBS_ZFS_CHART_VERSION
    assert chart["values"]["zfsController"]["snapshotController"] == {"enabled": True}
    minimal_raw["storage"] = {"installSnapshotController": False}
    chart = deploy(validate_config(minimal_raw)).chart("zfs-localpv")
    assert chart["values"]["zfsController"]["snapshotController"] == {"enabled": False}


# --- (10) pulumi destroy and the chart's cleanup-protection finalizers ----------------------------


def _upstream_scale_set_renders() -> list[tuple[str, list[dict[str, Any]]]]:
    """(where, objects) of every recorded upstream scale-set render: each shipped stack's
    scale-set releases and the kubernetes-novolume cases (tests/data/upstream-charts-0.14.2)."""
    renders: list[tuple[str, list[dict[str, Any]]]] = []
    for stack in record_upstream_charts.STACKS:
        table = json.loads((record_upstream_charts.TABLE_DIR / f"{stack}.json").read_text())
        for release in table["releases"]:
            if c.ARC_SCALE_SET_CHART.endswith(f"/{release['chart']}"):
                renders.append((f"{stack}/{release['release']}", release["objects"]))
    for variant, entry in record_chart_cases.load()["novolume"].items():
        renders.append((f"novolume/{variant}", entry["objects"]))
    return renders


@pytest.mark.parametrize(
    ("where", "objects"),
    _upstream_scale_set_renders(),
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_scale_set_depends_on_exactly_what_upstream_protects(
    where: str, objects: list[dict[str, Any]]
) -> None:
    """Every object upstream 0.14.2 renders with the cleanup-protection finalizer for the
    program's values is a dependency of the AutoscalingRunnerSet, and nothing else is: the
    helm.sh/v4 Chart then creates them first and destroys them only after the scale set is gone
    (and the controller has lifted their finalizers), so ``pulumi destroy`` cannot deadlock."""
    protected = {
        f"{o['object']['apiVersion'].rpartition('/')[0]}/namespaces/{o['namespace']}/"
        f"{o['kind']}/{o['name']}"
        for o in objects
        if c.CLEANUP_PROTECTION_FINALIZER in (o["object"]["metadata"].get("finalizers") or [])
    }
    (ars,) = [o["object"] for o in objects if o["kind"] == "AutoscalingRunnerSet"]
    depends_on = ars["metadata"]["annotations"][c.ANNOTATION_DEPENDS_ON].split(",")
    assert len(protected) == 5, where
    assert sorted(depends_on) == sorted(protected), where
