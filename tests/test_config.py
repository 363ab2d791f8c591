"""Stack config models: the shipped stacks load, and every bad input names its key and fix."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from components import config as cfg
from components.config import (
    SECRET_FIELD_ALIASES,
    ConfigError,
    SecretValue,
    StackConfig,
    load_stack_file,
    parse_duration,
    parse_quantity,
    validate_config,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def raw() -> dict[str, Any]:
    return load_stack_file(DATA / "minimal_stack.yaml")


def _set(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Return a copy of raw config with ``path`` (dotted, as with --path) set or deleted."""
    out = copy.deepcopy(raw)
    node: Any = out
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    last = parts[-1]
    if value is _DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


_DELETE = object()


def _problems(raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        validate_config(raw)
    return {p.path: f"{p.message} (e.g. {p.example})" for p in info.value.problems}


@pytest.mark.parametrize("stack", sorted(ROOT.glob("Pulumi.*.yaml")), ids=lambda p: p.name)
def test_shipped_stacks_load(stack: Path) -> None:
    config = validate_config(load_stack_file(stack))
    assert config.caches and config.scale_sets


def test_minimal_stack_defaults(raw: dict[str, Any]) -> None:
    config = validate_config(raw)
    assert config.storage.storage_class_for("node-a") == "arc-zfs-node-a"
    assert config.node_of(config.scale_sets["linux"]) == "node-a"
    assert config.github_url_of(config.scale_sets["linux"]) == "https://github.com/acme"
    assert config.caches["gcc12"].grace_period.total_seconds() == 15 * 60


BAD_INPUTS: list[tuple[str, Any, str, str]] = [
    # (path to set, value, key path reported, text the message must contain)
    ("github.url", "http://github.com/acme", "github.url", "expected form"),
    ("github.url", _DELETE, "github.url", "is required"),
    (
        "github.credentials.token",
        "ghp_plaintext",
        "github.credentials.token",
        "--secret --path github.credentials.token",
    ),
    ("github.credentials.token", _DELETE, "github.credentials", "exactly one of `app`"),
    (
        "github.credentials.app",
        {"appId": 1, "installationId": 2, "privateKey": {"secure": "x"}},
        "github.credentials",
        "exactly one",
    ),
    ("github.caBundle", "not a pem", "github.caBundle", "expected form"),
    ("github.colour", "blue", "github.colour", "not a known key"),
    ("caches.gcc12.size", "200GB", "caches.gcc12.size", "not a Kubernetes quantity"),
    ("caches.gcc12.size", "0Gi", "caches.gcc12.size", "not a Kubernetes quantity"),
    ("caches.gcc12.size", _DELETE, "caches.gcc12.size", "is required"),
    ("caches.gcc12.node", _DELETE, "caches.gcc12.node", "is required"),
    ("caches.gcc12.mountPath", "CONAN_HOME", "caches.gcc12.mountPath", "absolute directory"),
    (
        "caches.gcc12.mountPath",
        "/home/runner/_work",
        "caches.gcc12.mountPath",
        "not a usable mount path",
    ),
    ("caches.gcc12.gracePeriod", "1m", "caches.gcc12", "gracePeriod must be at least 5m"),
    ("caches.gcc12.leaseDuration", "five minutes", "caches.gcc12.leaseDuration", "not a duration"),
    ("caches.gcc12.retention", "0s", "caches.gcc12.retention", "longer than zero"),
    (
        "caches.gcc12.import",
        {"dataset": "no-slash"},
        "caches.gcc12.import.dataset",
        "expected form",
    ),
    ("caches.gcc12.sise", "200Gi", "caches.gcc12.sise", "known keys here: env"),
    ("caches.gcc12.namespace", "Bad_NS", "caches.gcc12.namespace", "not a valid name"),
    (
        "caches.GCC12",
        {"node": "n", "size": "1Gi", "mountPath": "/x"},
        "caches.GCC12",
        "not a valid name",
    ),
    ("scaleSets.linux.minRunners", 9, "scaleSets.linux.minRunners", "greater than maxRunners"),
    ("scaleSets.linux.maxRunners", 0, "scaleSets.linux.maxRunners", "greater than or equal to 1"),
    ("scaleSets.linux.minRunners", -1, "scaleSets.linux.minRunners", "greater than or equal to 0"),
    (
        "scaleSets.linux.caches",
        ["gcc13"],
        "scaleSets.linux.caches[0].cache",
        "not declared under caches",
    ),
    (
        "scaleSets.linux.caches",
        [{"cache": "gcc12", "size": "100Gi"}],
        "scaleSets.linux.caches[0].size",
        "exactly the parent's size",
    ),
    ("scaleSets.linux.caches", [], "scaleSets.linux.caches", "mounts no cache"),
    ("scaleSets.linux.node", "node-b", "scaleSets.linux.node", "caches live on 'node-a'"),
    (
        "scaleSets.linux.namespace",
        "other-ns",
        "scaleSets.linux.namespace",
        "dataSource must be in the job pod's namespace",
    ),
    (
        "scaleSets.linux.runnerImage",
        "ghcr.io/actions/actions-runner:latest",
        "scaleSets.linux.runnerImage",
        "not pinned",
    ),
    (
        "scaleSets.linux.runnerImage",
        "ghcr.io/actions/actions-runner",
        "scaleSets.linux.runnerImage",
        "not pinned",
    ),
    (
        "scaleSets.linux.jobResources",
        {"requests": {"gpu": "1"}},
        "scaleSets.linux.jobResources.requests.gpu",
        "cpu",
    ),
    (
        "scaleSets.linux.jobResources",
        {"requests": {"cpu": "250x"}},
        "scaleSets.linux.jobResources.requests.cpu",
        "250m",
    ),
    (
        "scaleSets.linux.podSecurity",
        {"level": "baseline"},
        "scaleSets.linux.podSecurity",
        "needs a `reason`",
    ),
    (
        "scaleSets.linux.podSecurity",
        {"level": "privileged"},
        "scaleSets.linux.podSecurity.level",
        "restricted",
    ),
    (
        "scaleSets.gcc12-builder.maxRunners",
        3,
        "scaleSets.gcc12-builder.maxRunners",
        "one job at a time",
    ),
    (
        "scaleSets.gcc12-builder.builds",
        "nope",
        "scaleSets.gcc12-builder.builds",
        "not declared under caches",
    ),
    (
        "scaleSets.second-builder",
        {"maxRunners": 1, "builds": "gcc12"},
        "scaleSets.second-builder.builds",
        "already has builder scale set",
    ),
    (
        "scaleSets.gcc12-builder.caches",
        ["gcc12"],
        "scaleSets.gcc12-builder.caches",
        "builder volume, not a clone",
    ),
    ("storage.storageClassPrefix", "ZFS", "storage.storageClassPrefix", "not a valid name"),
    ("storage.compression", "lzma", "storage.compression", "'off', 'lz4', 'zstd' or 'gzip'"),
    ("storage.recordsize", "100k", "storage.recordsize", "expected form"),
    (
        "storage.chart",
        {"chart": "oci://example.com/charts/zfs"},
        "storage.chart",
        "needs a pinned `version`",
    ),
    (
        "storage.nodePreparation",
        {
            "hosts": {"node-a": {"host": "10.0.0.1", "devices": ["/dev/sdb"]}},
            "privateKey": "-----BEGIN",
        },
        "storage.nodePreparation.privateKey",
        "plain text",
    ),
    (
        "storage.nodePreparation",
        {"hosts": {"node-a": {"host": "10.0.0.1", "devices": []}}, "privateKey": {"secure": "x"}},
        "storage.nodePreparation.hosts.node-a.devices",
        "at least 1 item",
    ),
    ("controller.replicas", 9, "controller.replicas", "less than or equal to 3"),
    (
        "controller.chart",
        {"chart": "oci://ghcr.io/x/y", "version": "latest"},
        "controller.chart",
        "pinned `version`",
    ),
    ("images.pullSecrets", ["Not_Valid"], "images.pullSecrets[0]", "not a valid name"),
    ("cluster.kubeconfig", 42, "cluster.kubeconfig", "valid string"),
    ("clusterr", {}, "clusterr", "not a known key"),
]


@pytest.mark.parametrize(
    ("path", "value", "reported", "text"),
    BAD_INPUTS,
    ids=[f"{b[0]}={b[1]!r}"[:60] for b in BAD_INPUTS],
)
def test_bad_input_names_key_and_fix(
    raw: dict[str, Any], path: str, value: Any, reported: str, text: str
) -> None:
    problems = _problems(_set(raw, path, value))
    assert reported in problems, f"expected a problem at {reported}, got {problems}"
    assert text in problems[reported]


def test_at_least_thirty_bad_inputs() -> None:
    assert len(BAD_INPUTS) >= 30


def test_every_problem_is_reported_not_just_the_first(raw: dict[str, Any]) -> None:
    bad = _set(_set(_set(raw, "caches.gcc12.size", "x"), "github.url", "y"), "extra", 1)
    assert {"caches.gcc12.size", "github.url", "extra"} <= set(_problems(bad))


def test_missing_sections_are_reported(raw: dict[str, Any]) -> None:
    problems = _problems({})
    assert {"github", "caches", "scaleSets"} <= set(problems)


def test_secret_field_aliases_match_models() -> None:
    """The runtime loader seals exactly the fields the models declare as secrets."""
    found: set[str] = set()

    def walk(model: type[BaseModel]) -> None:
        for name, field in model.model_fields.items():
            if "SecretValue" in repr(field.annotation):
                found.add(field.alias or name)
            for arg in (field.annotation, *getattr(field.annotation, "__args__", ())):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    walk(arg)

    walk(StackConfig)
    assert found == SECRET_FIELD_ALIASES


def test_secret_value_never_prints_plaintext() -> None:
    secret = SecretValue("ghp_verysecret")
    assert "ghp_verysecret" not in repr(secret) + str(secret)


def test_quantities_and_durations() -> None:
    assert parse_quantity("200Gi") == 200 * 2**30
    assert parse_quantity("1G") == 10**9
    assert parse_duration("1h30m").total_seconds() == 5400
    assert parse_duration("7d").days == 7
    with pytest.raises(ValueError):
        parse_duration("")


def test_job_resources_take_kubernetes_resource_quantities(raw: dict[str, Any]) -> None:
    """CPU in milli-units and decimal exponents, as a PodSpec takes them, not only sizes."""
    assert cfg.parse_resource_quantity("250m") == Decimal("0.25")
    assert cfg.parse_resource_quantity("1.5") == Decimal("1.5")
    assert cfg.parse_resource_quantity("4Gi") == 4 * 2**30
    assert cfg.parse_resource_quantity("1e3") == 1000
    resources = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1.5"}}
    config = validate_config(_set(raw, "scaleSets.linux.jobResources", resources))
    assert config.scale_sets["linux"].job_resources.requests == resources["requests"]
    with pytest.raises(ConfigError):
        validate_config(_set(raw, "caches.gcc12.size", "250m"))


def test_offline_check_cli_reports_all_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text(
        (DATA / "minimal_stack.yaml")
        .read_text()
        .replace("200Gi", "200GB")
        .replace("maxRunners: 4", "maxRunners: 0")
    )
    assert cfg.main([str(bad)]) == 1
    out = capsys.readouterr().out
    assert "2 problem(s)" in out
    assert "caches.gcc12.size: '200GB' is not a Kubernetes quantity" in out
    assert "scaleSets.linux.maxRunners:" in out


def test_offline_check_cli_summarises_a_good_stack(capsys: pytest.CaptureFixture[str]) -> None:
    assert cfg.main([str(ROOT / "Pulumi.dev.yaml")]) == 0
    out = capsys.readouterr().out.strip()
    assert out.count("\n") == 0 and "ok" in out and "2 cache(s)" in out


def test_offline_check_cli_unreadable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cfg.main([str(tmp_path / "Pulumi.none.yaml")]) == 1
    assert "cannot be read" in capsys.readouterr().out
