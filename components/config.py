"""Typed models of the whole stack configuration, and the offline config check.

Every key is validated, unknown keys are rejected, and every problem is reported with the key
path as the user types it with ``pulumi config set --path`` (``caches.gcc12.size``), what is
wrong, and an example of a right value. Run the check without a cluster or the Pulumi engine::

    python -m components.config Pulumi.dev.yaml
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from components import constants as c

__all__ = [
    "SECRET_FIELD_ALIASES",
    "ArcControllerConfig",
    "CacheConfig",
    "CacheMount",
    "ChartRef",
    "ClusterConfig",
    "ConfigError",
    "ConfigProblem",
    "GithubAppCredentials",
    "GithubConfig",
    "GithubCredentials",
    "ImagesConfig",
    "ImportedDataset",
    "NodePreparation",
    "PodSecurityConfig",
    "Resources",
    "ScaleSetConfig",
    "SecretValue",
    "SshHost",
    "StackConfig",
    "StorageConfig",
    "WorkVolume",
    "load_stack_file",
    "main",
    "parse_duration",
    "parse_quantity",
    "validate_config",
]

# --- Scalar types --------------------------------------------------------------------------

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUANTITY = re.compile(r"^(?P<num>[0-9]+(\.[0-9]+)?)(?P<unit>Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_UNITS: Final = {
    None: 1,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}  # fmt: skip
_DURATION = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")
_RECORDSIZE = re.compile(r"^(4|8|16|32|64|128|256|512)k$|^1M$")


def parse_quantity(value: str) -> int:
    """Return the number of bytes of a Kubernetes storage quantity such as ``200Gi``."""
    match = _QUANTITY.match(value)
    if match is None:
        raise ValueError(value)
    return int(float(match["num"]) * _UNITS[match["unit"]])


def parse_duration(value: str) -> timedelta:
    """Parse a duration such as ``90s``, ``15m``, ``1h30m`` or ``7d``."""
    match = _DURATION.match(value)
    if not value or match is None:
        raise ValueError(value)
    return timedelta(
        days=int(match["d"] or 0),
        hours=int(match["h"] or 0),
        minutes=int(match["m"] or 0),
        seconds=int(match["s"] or 0),
    )


def _dns_label(value: str) -> str:
    if len(value) > 40 or not _DNS_LABEL.match(value):
        raise PydanticCustomError(
            "dns_label",
            "'{value}' is not a valid name: use at most 40 lower-case letters, digits and '-', "
            "starting and ending with a letter or digit (e.g. gcc12-main)",
            {"value": value},
        )
    return value


def _quantity(value: str) -> str:
    try:
        if parse_quantity(value) <= 0:
            raise ValueError(value)
    except ValueError:
        raise PydanticCustomError(
            "quantity",
            "'{value}' is not a Kubernetes quantity: use a number with a unit, e.g. 200Gi",
            {"value": value},
        ) from None
    return value


def _duration(value: str | timedelta) -> timedelta:
    if isinstance(value, timedelta):
        return value
    try:
        parsed = parse_duration(value)
    except ValueError:
        raise PydanticCustomError(
            "duration",
            "'{value}' is not a duration: use units d, h, m, s such as 15m, 1h30m or 7d",
            {"value": value},
        ) from None
    if parsed <= timedelta(0):
        raise PydanticCustomError("duration", "must be longer than zero, e.g. 15m", {})
    return parsed


def _absolute_path(value: str) -> str:
    if not value.startswith("/") or value.rstrip("/") in ("", c.RUNNER_WORK_DIR):
        raise PydanticCustomError(
            "mount_path",
            "'{value}' is not a usable mount path: use an absolute directory such as /CONAN_HOME",
            {"value": value},
        )
    return value.rstrip("/")


def _pinned_image(value: str) -> str:
    name, _, digest = value.partition("@")
    tag = name.rsplit("/", 1)[-1].partition(":")[2]
    if digest:
        if not digest.startswith("sha256:"):
            raise PydanticCustomError(
                "image", "'{value}' has a malformed digest: use @sha256:<64 hex>", {"value": value}
            )
        return value
    if not tag or tag == "latest":
        raise PydanticCustomError(
            "image",
            "'{value}' is not pinned: give a version tag or a digest, e.g. {example}",
            {"value": value, "example": c.RUNNER_IMAGE},
        )
    return value


def _version(text: str) -> tuple[int, ...] | None:
    parts = text.removeprefix("v").split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else None


def _registrable_runner(value: str) -> str:
    """Refuse an actions-runner image GitHub no longer registers (other images pass)."""
    name, _, _ = value.partition("@")
    repository, _, tag = name.rpartition(":")
    version = _version(tag)
    official = repository.rsplit("/", 1)[-1] == "actions-runner"
    if official and version is not None and version < (_version(c.MIN_RUNNER_VERSION) or ()):
        raise PydanticCustomError(
            "runner_version",
            "'{value}' is older than {minimum}: GitHub refuses to register it, and older "
            "images lack the hooks this program configures; use {example}",
            {"value": value, "minimum": c.MIN_RUNNER_VERSION, "example": c.RUNNER_IMAGE},
        )
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
Quantity = Annotated[str, AfterValidator(_quantity)]
Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    PlainSerializer(lambda d: f"{int(d.total_seconds())}s", return_type=str),
]
MountPath = Annotated[str, AfterValidator(_absolute_path)]
PinnedImage = Annotated[str, AfterValidator(_pinned_image)]
RunnerImage = Annotated[PinnedImage, AfterValidator(_registrable_runner)]


@dataclass(frozen=True, slots=True)
class SecretValue:
    """A config value stored encrypted in the stack file.

    ``value`` is the plaintext when the Pulumi engine decrypted it, or ``None`` in the offline
    config check, which never decrypts. The plaintext never appears in ``repr``.
    """

    value: str | None

    def __repr__(self) -> str:
        return "SecretValue(***)"

    def __str__(self) -> str:
        return "***"


def _secret(value: object) -> SecretValue:
    if isinstance(value, SecretValue):
        return value
    if isinstance(value, Mapping) and set(value) == {"secure"}:
        return SecretValue(None)
    raise PydanticCustomError(
        "plain_secret",
        "is stored in plain text; store it encrypted with "
        "`pulumi config set --secret --path {path} <value>`",
        {"path": "{path}"},
    )


Secret = Annotated[
    SecretValue,
    BeforeValidator(_secret),
    PlainSerializer(lambda _: "***", return_type=str),
]

#: Aliases of the fields that hold secrets (a test checks this against the models).
SECRET_FIELD_ALIASES: Final = frozenset({"token", "privateKey"})


class _Model(BaseModel):
    """Base of every config model: camelCase keys, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        arbitrary_types_allowed=True,
    )


# --- Shared pieces -------------------------------------------------------------------------


class ChartRef(_Model):
    """Where a Helm chart comes from: OCI reference, repository URL plus name, or local path."""

    chart: str = Field(
        description="chart name in `repo`, an `oci://` reference, or a local chart directory",
        examples=["oci://ghcr.io/actions/actions-runner-controller-charts/gha-runner-scale-set"],
    )
    version: str | None = Field(
        description="pinned chart version (required for OCI and repository charts)",
        default=None,
        examples=["0.14.2"],
    )
    repo: str | None = Field(
        description="Helm repository URL holding `chart`",
        default=None,
        examples=["https://openebs.github.io/zfs-localpv"],
    )

    @property
    def is_local(self) -> bool:
        """True when the chart is a directory or archive on disk."""
        return self.repo is None and not self.chart.startswith("oci://")

    @model_validator(mode="after")
    def _pinned(self) -> Self:
        if not self.is_local and (self.version is None or self.version in ("", "latest")):
            raise PydanticCustomError(
                "chart_version",
                "remote chart {chart!r} needs a pinned `version`, e.g. 0.14.2",
                {"chart": self.chart},
            )
        return self


class Resources(_Model):
    """Container resource requests and limits, as in a PodSpec."""

    requests: dict[Literal["cpu", "memory", "ephemeral-storage"], Quantity] = Field(
        description="resource requests of the `$job` container",
        default_factory=dict,
        examples=[{"cpu": "2", "memory": "4Gi"}],
    )
    limits: dict[Literal["cpu", "memory", "ephemeral-storage"], Quantity] = Field(
        description="resource limits of the `$job` container",
        default_factory=dict,
        examples=[{"memory": "8Gi"}],
    )


# --- Top-level sections --------------------------------------------------------------------


class ClusterConfig(_Model):
    """Which cluster the explicit Kubernetes provider targets."""

    kubeconfig: str | None = Field(
        description="kubeconfig path (default: $KUBECONFIG or ~/.kube/config)",
        default=None,
        examples=["~/.kube/config"],
    )
    context: str | None = Field(
        description="kubeconfig context (default: the current context)",
        default=None,
        examples=["prod-admin@ci-cluster"],
    )


class ImagesConfig(_Model):
    """Image registry mirror and pull secrets used by every chart."""

    registry: str | None = Field(
        description="mirror registry every image is rewritten to (ghcr.io/a/b → <registry>/a/b)",
        default=None,
        examples=["registry.example.com/mirror"],
    )
    pull_secrets: list[DnsLabel] = Field(
        description="image pull Secrets (by name) for every pod",
        default_factory=list,
        examples=[["mirror-pull"]],
    )


class SshHost(_Model):
    """How to reach one node over SSH to prepare its ZFS pool."""

    host: str = Field(description="address of the node for SSH", examples=["10.0.0.11"])
    user: str = Field(
        description="SSH user allowed to run zpool/zfs", default="root", examples=["root"]
    )
    port: int = Field(description="SSH port", default=22, ge=1, le=65535, examples=[22])
    devices: list[str] = Field(
        description="block devices for `zpool create` (only used when the pool does not exist)",
        min_length=1,
        examples=[["/dev/nvme1n1"]],
    )


class NodePreparation(_Model):
    """Optional creation of the zpool on each node with pulumi-command over SSH."""

    hosts: dict[str, SshHost] = Field(
        description="nodes to prepare, by Kubernetes node name", min_length=1
    )
    private_key: Secret = Field(
        description="SSH private key (secret)", examples=["<set with --secret>"]
    )


class StorageConfig(_Model):
    """OpenEBS ZFS LocalPV, its storage classes and snapshot class."""

    install: bool = Field(
        default=True,
        description="install the OpenEBS ZFS LocalPV chart (false: use an existing install)",
    )
    chart: ChartRef = Field(
        default=ChartRef(
            chart=c.OPENEBS_ZFS_CHART_NAME,
            repo=c.OPENEBS_ZFS_CHART,
            version=c.OPENEBS_ZFS_CHART_VERSION,
        ),
        description="the zfs-localpv chart",
    )
    namespace: DnsLabel = Field(
        default=c.OPENEBS_NAMESPACE, description="namespace of OpenEBS ZFS LocalPV"
    )
    install_snapshot_crds: bool = Field(
        description="install the VolumeSnapshot CRDs (false when the cluster has them)",
        default=True,
        examples=[False],
    )
    install_snapshot_controller: bool = Field(
        description="run the chart's snapshot-controller (false when the cluster already runs "
        "one: there must be one per cluster)",
        default=True,
        examples=[False],
    )
    pool_name: str = Field(
        description="zpool (or parent dataset) holding every cache dataset",
        default="zfspv-pool",
        pattern=r"^[A-Za-z0-9_.:-]+(/[A-Za-z0-9_.:-]+)*$",
    )
    compression: Literal["off", "lz4", "zstd", "gzip"] = Field(
        default="lz4", description="ZFS compression of cache datasets"
    )
    recordsize: str = Field(
        description="ZFS recordsize of cache datasets",
        default="128k",
        pattern=_RECORDSIZE.pattern,
        examples=["128k"],
    )
    storage_class_prefix: DnsLabel = Field(
        default="arc-zfs",
        description="prefix of the per-node StorageClasses `<prefix>-<node>` holding every "
        "generation, builder volume and job clone of the caches on that node",
        examples=["arc-zfs"],
    )
    snapshot_class: DnsLabel = Field(
        default="arc-zfs-snapshots", description="VolumeSnapshotClass used by promotion"
    )
    node_preparation: NodePreparation | None = Field(
        default=None, description="create the zpool over SSH with pulumi-command (idempotent)"
    )

    def storage_class_for(self, node: str) -> str:
        """The StorageClass of the caches on ``node``."""
        return c.cache_storage_class(self.storage_class_prefix, node)


class ArcControllerConfig(_Model):
    """The gha-runner-scale-set-controller release."""

    install: bool = Field(
        default=True, description="install the controller chart (false: one is already installed)"
    )
    namespace: DnsLabel = Field(
        default="arc-systems", description="namespace of the ARC controller"
    )
    release_name: DnsLabel = Field(
        default="arc", description="Helm release name of the controller (names its service account)"
    )
    chart: ChartRef = Field(
        default=ChartRef(chart=c.ARC_CONTROLLER_CHART, version=c.ARC_CONTROLLER_CHART_VERSION),
        description="the gha-runner-scale-set-controller chart",
    )
    scale_set_chart: ChartRef = Field(
        default=ChartRef(chart=c.ARC_SCALE_SET_CHART, version=c.ARC_SCALE_SET_CHART_VERSION),
        description="the gha-runner-scale-set chart used by every scale set",
    )
    replicas: int = Field(description="controller replicas", default=1, ge=1, le=3)


class GithubAppCredentials(_Model):
    """A GitHub App installation the runners register with."""

    app_id: int = Field(description="GitHub App id", gt=0, examples=[123456])
    installation_id: int = Field(description="GitHub App installation id", gt=0, examples=[7890123])
    private_key: Secret = Field(description="GitHub App private key PEM (secret)")


class GithubCredentials(_Model):
    """Exactly one of a GitHub App or a personal access token, both secret."""

    app: GithubAppCredentials | None = Field(default=None, description="GitHub App credentials")
    token: Secret | None = Field(default=None, description="personal access token (secret)")

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.app is None) == (self.token is None):
            raise PydanticCustomError(
                "credentials",
                "set exactly one of `app` (appId, installationId, privateKey) or `token`, e.g. "
                "`pulumi config set --secret --path github.credentials.token ghp_...`",
                {},
            )
        return self


class GithubConfig(_Model):
    """Where runners register and with which credentials."""

    url: str = Field(
        description="organisation, enterprise or repository URL runners register at",
        pattern=r"^https://[^/\s]+(/[^/\s]+){1,2}/?$",
        examples=["https://github.com/acme"],
    )
    credentials: GithubCredentials = Field(
        description="exactly one of `app` or `token`, set with `--secret`"
    )
    ca_bundle: str | None = Field(
        description="PEM CA bundle of a GitHub Enterprise Server",
        default=None,
        pattern=r"^-----BEGIN CERTIFICATE-----",
        examples=["-----BEGIN CERTIFICATE-----\n..."],
    )


class ImportedDataset(_Model):
    """An existing ZFS dataset adopted as the cache's root generation."""

    dataset: str = Field(
        description="existing dataset `<pool>/<path>/<volume>` adopted as generation 1",
        pattern=r"^[A-Za-z0-9_.:-]+(/[A-Za-z0-9_.:-]+)+$",
        examples=["zfspv-pool/gcc12-main"],
    )


class CacheConfig(_Model):
    """One build cache: its node, size, where jobs mount it, and its promotion settings."""

    namespace: DnsLabel = Field(
        description="namespace of the cache's claims (the job pods' namespace)",
        default="arc-runners",
        examples=["arc-runners"],
    )
    node: str = Field(
        description="node that owns the cache's datasets; runners using it are pinned there",
        min_length=1,
        examples=["zfs-node-1"],
    )
    size: Quantity = Field(
        description="capacity of every generation; clones request exactly this", examples=["200Gi"]
    )
    mount_path: MountPath = Field(
        description="where job containers mount the clone", examples=["/CONAN_HOME"]
    )
    env: dict[str, str] = Field(
        description="environment variables set in the `$job` container",
        default_factory=dict,
        examples=[{"CONAN_HOME": "/CONAN_HOME"}],
    )
    import_: ImportedDataset | None = Field(
        description="adopt an existing ZFS dataset instead of starting empty",
        default=None,
        alias="import",
    )
    promote: str | None = Field(
        description="promotion token: a new value promotes the builder volume to a new generation",
        default=None,
        examples=["3f2c9a1"],
    )
    reset_builder: str | None = Field(
        description="reset token: a new value makes a fresh builder volume from the current parent",
        default=None,
        examples=["2026-11-23"],
    )
    lease_duration: Duration = Field(
        description="promotion Lease duration (renewed while working)",
        default=timedelta(minutes=5),
        examples=["5m"],
    )
    grace_period: Duration = Field(
        description="how long a superseded generation is kept before collection (>= 5m)",
        default=timedelta(minutes=15),
        examples=["15m"],
    )
    retention: Duration = Field(
        description="how long an old builder volume is kept for troubleshooting",
        default=timedelta(days=7),
        examples=["7d"],
    )
    ready_timeout: Duration = Field(
        description="how long to wait for a snapshot to be ready or a clone to bind",
        default=timedelta(minutes=5),
        examples=["5m"],
    )

    @model_validator(mode="after")
    def _grace_covers_propagation(self) -> Self:
        # A superseded parent must outlive ConfigMap propagation to every runner pod (about a
        # minute, worst case more) plus the hook's prepare timeout.
        if self.grace_period < timedelta(minutes=5):
            raise PydanticCustomError(
                "grace_period",
                "gracePeriod must be at least 5m so no job still clones a collected parent "
                "(ConfigMap propagation plus the hook's prepare timeout); e.g. 15m",
                {},
            )
        return self


class CacheMount(_Model):
    """A cache mounted into a scale set's job pods as a fresh clone of its current parent."""

    cache: DnsLabel = Field(description="name of a cache under `caches`", examples=["gcc12"])
    mount_path: MountPath | None = Field(
        description="mount path override for this scale set", default=None, examples=["/CONAN_HOME"]
    )
    size: Quantity | None = Field(
        description="must equal the cache's size when given", default=None, examples=["200Gi"]
    )


def _cache_mount(value: object) -> object:
    return {"cache": value} if isinstance(value, str) else value


class WorkVolume(_Model):
    """The runner's `work` ephemeral volume (kubernetes mode), shared with the job pod."""

    storage_class: str | None = Field(
        description="StorageClass of the runner's work volume (default class when unset)",
        default=None,
        examples=["local-path"],
    )
    size: Quantity = Field(
        description="size of the runner's work volume", default="10Gi", examples=["10Gi"]
    )


class PodSecurityConfig(_Model):
    """Pod Security admission level enforced on the runner namespace."""

    level: Literal["restricted", "baseline"] = Field(
        default="restricted", description="Pod Security level enforced on the namespace"
    )
    reason: str | None = Field(
        description="why restricted cannot hold (required for baseline)",
        default=None,
        examples=["runner image needs a writable /etc"],
    )

    @model_validator(mode="after")
    def _reason_for_baseline(self) -> Self:
        if self.level == "baseline" and not self.reason:
            raise PydanticCustomError(
                "pod_security",
                "level baseline needs a `reason` saying why restricted cannot hold",
                {},
            )
        return self


class ScaleSetConfig(_Model):
    """One runner scale set (gha-runner-scale-set release) in kubernetes container mode."""

    namespace: DnsLabel = Field(
        description="namespace of runner and job pods",
        default="arc-runners",
        examples=["arc-runners"],
    )
    github_config_url: str | None = Field(
        description="register at this URL instead of `github.url`",
        default=None,
        pattern=r"^https://[^/\s]+(/[^/\s]+){1,2}/?$",
        examples=["https://github.com/acme/app"],
    )
    runner_group: str = Field(default="default", description="GitHub runner group")
    min_runners: int = Field(description="idle runners kept warm", default=0, ge=0, examples=[0])
    max_runners: int = Field(
        description="upper bound of runners (1 for a builder)",
        default=5,
        ge=1,
        le=1000,
        examples=[10],
    )
    caches: list[Annotated[CacheMount, BeforeValidator(_cache_mount)]] = Field(
        description="caches cloned into every job pod", default_factory=list, examples=[["gcc12"]]
    )
    builds: DnsLabel | None = Field(
        description="cache whose builder volume this scale set's jobs mount read-write",
        default=None,
        examples=["gcc12"],
    )
    node: str | None = Field(
        description="node to pin runners to (must match the caches' node)",
        default=None,
        examples=["zfs-node-1"],
    )
    runner_image: RunnerImage = Field(
        default=c.RUNNER_IMAGE,
        description="pinned runner image (2.329.0 or newer: it ships runner-container-hooks 0.7 "
        "at /home/runner/k8s)",
    )
    use_kube_scheduler: bool = Field(
        default=False,
        description="let the scheduler place job pods (hook 0.7 then uses a required node "
        "affinity to the runner's node instead of spec.nodeName, so quotas, taints and "
        "WaitForFirstConsumer volumes are honoured)",
        examples=[True],
    )
    services: list[DnsLabel] = Field(
        default_factory=list,
        description="workflow service containers (`services:`) this scale set's jobs may use, "
        "by the name the hook gives them (the image's last path part, e.g. redis for "
        "redis:7): each gets the job container's securityContext, without which a restricted "
        "namespace rejects the job pod",
        examples=[["redis", "postgres"]],
    )
    job_resources: Resources = Field(
        default=Resources(), description="requests and limits of the `$job` container"
    )
    work_volume: WorkVolume = Field(default=WorkVolume(), description="the runner's work volume")
    pod_security: PodSecurityConfig = Field(
        default=PodSecurityConfig(), description="Pod Security admission level of the namespace"
    )


class StackConfig(_Model):
    """The whole stack configuration (the ``arc-zfs-cache:*`` keys of ``Pulumi.<stack>.yaml``)."""

    cluster: ClusterConfig = Field(default=ClusterConfig(), description="target cluster")
    images: ImagesConfig = Field(default=ImagesConfig(), description="image registry mirror")
    storage: StorageConfig = Field(
        default=StorageConfig(), description="OpenEBS ZFS LocalPV and classes"
    )
    controller: ArcControllerConfig = Field(
        default=ArcControllerConfig(), description="ARC controller and chart references"
    )
    github: GithubConfig = Field(description="GitHub URL and credentials")
    caches: dict[DnsLabel, CacheConfig] = Field(description="build caches by name", min_length=1)
    scale_sets: dict[DnsLabel, ScaleSetConfig] = Field(
        description="runner scale sets by name", min_length=1
    )

    @model_validator(mode="after")
    def _cross_references(self) -> Self:
        problems: list[ConfigProblem] = []
        builders: dict[str, str] = {}
        for name, scale_set in self.scale_sets.items():
            problems.extend(self._check_scale_set(name, scale_set, builders))
        if problems:
            raise ConfigError(problems)
        return self

    def _check_scale_set(
        self, name: str, scale_set: ScaleSetConfig, builders: dict[str, str]
    ) -> Iterable[ConfigProblem]:
        path = f"scaleSets.{name}"
        known = ", ".join(sorted(self.caches))
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
            cache = self.caches.get(cache_name)
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
            cache = self.caches.get(mount.cache)
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
                f"caches: [{next(iter(self.caches))}]",
            )

    def node_of(self, scale_set: ScaleSetConfig) -> str:
        """The node a scale set's runners are pinned to: the node of its caches."""
        names = [m.cache for m in scale_set.caches] + (
            [scale_set.builds] if scale_set.builds else []
        )
        return self.caches[names[0]].node if names else str(scale_set.node)

    def github_url_of(self, scale_set: ScaleSetConfig) -> str:
        """The githubConfigUrl a scale set registers at."""
        return scale_set.github_config_url or self.github.url


# --- Errors --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in the stack config: where, what is wrong, and an example of a right value."""

    path: str
    message: str
    example: str | None = None

    def __str__(self) -> str:
        hint = f" (e.g. {self.example})" if self.example else ""
        return f"{self.path}: {self.message}{hint}"


class ConfigError(ValueError):
    """The stack config has one or more problems; ``problems`` lists all of them."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("function-") or part in ("dataclass", "json-or-python", "[key]"):
            continue
        else:
            out += f".{part}" if out else part
    return out


def _field_at(loc: tuple[int | str, ...]) -> tuple[type[BaseModel] | None, Any]:
    """Walk the models along an error location; return (parent model, field info)."""
    model: Any = StackConfig
    field: Any = None
    parent: type[BaseModel] | None = None
    for part in loc:
        if isinstance(model, type) and issubclass(model, BaseModel):
            by_alias = {f.alias or n: f for n, f in model.model_fields.items()}
            field = by_alias.get(str(part))
            parent = model
            if field is None:
                return parent, None
            model = _inner_model(field.annotation)
        elif model is not None and field is not None:
            continue  # dict key or list index: the model stays the element type
    return parent, field


def _inner_model(annotation: Any) -> Any:
    for arg in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        inner = _inner_model_from_args(arg)
        if inner is not None:
            return inner
    return None


def _inner_model_from_args(annotation: Any) -> Any:
    for arg in getattr(annotation, "__args__", ()) + getattr(annotation, "__metadata__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        origin_args = getattr(arg, "__args__", ())
        for inner in origin_args:
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    return None


def _problem_from(error: Any) -> ConfigProblem:
    loc = tuple(error["loc"])
    path = _path(loc)
    parent, field = _field_at(loc)
    example = None
    if field is not None and field.examples:
        example = (
            json.dumps(field.examples[0])
            if not isinstance(field.examples[0], str)
            else (field.examples[0])
        )
    kind = error["type"]
    if kind == "extra_forbidden":
        known = sorted(f.alias or n for n, f in parent.model_fields.items()) if parent else []
        return ConfigProblem(path, "is not a known key; known keys here: " + ", ".join(known))
    if kind == "missing":
        return ConfigProblem(path, "is required", example)
    if kind == "string_pattern_mismatch":
        return ConfigProblem(path, f"{error['input']!r} does not have the expected form", example)
    message = str(error["msg"]).replace("{path}", path)
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    return ConfigProblem(path, message[:1].lower() + message[1:], example)


def validate_config(raw: Mapping[str, Any]) -> StackConfig:
    """Validate raw config (top-level keys without the project prefix); raise ConfigError."""
    try:
        return StackConfig.model_validate(raw)
    except ConfigError:
        raise
    except ValidationError as exc:
        problems: list[ConfigProblem] = []
        for error in exc.errors():
            ctx_error = (error.get("ctx") or {}).get("error")
            if isinstance(ctx_error, ConfigError):
                problems.extend(ctx_error.problems)
            else:
                problems.append(_problem_from(error))
        raise ConfigError(problems) from None


# --- Stack files ---------------------------------------------------------------------------


def load_stack_file(path: Path) -> dict[str, Any]:
    """Read the ``arc-zfs-cache:*`` keys of a ``Pulumi.<stack>.yaml`` file (secrets stay sealed)."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError([ConfigProblem(str(path), f"cannot be read: {exc}")]) from None
    entries = document.get("config") or {}
    raw: dict[str, Any] = {}
    problems: list[ConfigProblem] = []
    for key, value in entries.items():
        namespace, _, name = str(key).partition(":")
        if namespace == c.CONFIG_NAMESPACE:
            raw[name] = value
        elif not name:
            problems.append(
                ConfigProblem(str(key), "has no namespace", f"{c.CONFIG_NAMESPACE}:{key}")
            )
    if problems:
        raise ConfigError(problems)
    return raw


def main(argv: list[str] | None = None) -> int:
    """Check stack files offline: print every problem and exit 1, or a summary and exit 0."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m components.config Pulumi.<stack>.yaml ...", file=sys.stderr)
        return 2
    status = 0
    for arg in args:
        path = Path(arg)
        try:
            config = validate_config(load_stack_file(path))
        except ConfigError as exc:
            status = 1
            print(f"{path}: {len(exc.problems)} problem(s)")
            for problem in exc.problems:
                print(f"  {problem}")
            continue
        print(f"{path}: ok — {summary(config)}")
    return status


def summary(config: StackConfig) -> str:
    """One line describing a valid stack."""
    runners = sum(s.max_runners for s in config.scale_sets.values())
    nodes = sorted({cache.node for cache in config.caches.values()})
    return (
        f"{len(config.caches)} cache(s) ({', '.join(config.caches)}), "
        f"{len(config.scale_sets)} scale set(s) up to {runners} runners, "
        f"node(s) {', '.join(nodes)}, github {config.github.url}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
