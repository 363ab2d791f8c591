"""Policy configuration: the JSON schema each policy declares, and its typed, validated form.

Every policy accepts ``exemptions``; some accept more (allowed uids, capabilities, registries,
container modes, namespaces at ``baseline``). Values come from
``pulumi preview --policy-pack policy --policy-pack-config <file.json>``, keyed by policy name::

    {
      "no-privileged-workloads": {
        "exemptions": [
          {"resource": "DaemonSet/openebs/*-zfs-localpv-node",
           "reason": "CSI node plugin: mounts ZFS datasets on the host"}
        ]
      },
      "pinned-images": {"allowedRegistries": ["ghcr.io/actions/", "registry.example.com/"]}
    }

An exemption names resources as ``Kind/namespace/name`` (shell-style wildcards allowed; the
namespace part is empty for cluster-scoped objects) and must say why. Exempt resources are
skipped by that policy and listed by the advisory ``policy-exemptions`` policy.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from pulumi_policy import PolicyConfigSchema

from ._constants import RUNNER_UID
from .hook_merge import HOOK_MODES
from .model import ResourceRef
from .values import as_int

__all__ = [
    "ALLOWED_CAPABILITIES",
    "ALLOWED_CONTAINER_MODES",
    "ALLOWED_REGISTRIES",
    "ALLOWED_UIDS",
    "BASELINE_NAMESPACES",
    "EXEMPTIONS",
    "ConfigError",
    "Exemption",
    "NamespaceReason",
    "Settings",
    "config_schema",
    "parse_settings",
]

#: Config key: resources a policy skips, each with a reason.
EXEMPTIONS: Final = "exemptions"
#: Config key: uids a pod may set in ``runAsUser`` (empty: any uid but 0).
ALLOWED_UIDS: Final = "allowedUids"
#: Config key: capabilities a container may add after dropping ALL.
ALLOWED_CAPABILITIES: Final = "allowedCapabilities"
#: Config key: registry prefixes images must come from (empty: any registry).
ALLOWED_REGISTRIES: Final = "allowedRegistries"
#: Config key: gha-runner-scale-set container modes allowed.
ALLOWED_CONTAINER_MODES: Final = "allowedContainerModes"
#: Config key: runner namespaces allowed to enforce ``baseline``, each with a reason.
BASELINE_NAMESPACES: Final = "baselineNamespaces"

_NAMESPACE_REASON_ITEM: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "namespace": {"type": "string", "minLength": 1},
        "reason": {"type": "string", "minLength": 1},
    },
    "required": ["namespace", "reason"],
}

_SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    EXEMPTIONS: {
        "type": "array",
        "description": "Resources this policy skips: Kind/namespace/name (wildcards allowed) "
        "and the reason. Each exemption is listed by the policy-exemptions policy.",
        "items": {
            "type": "object",
            "properties": {
                "resource": {"type": "string", "pattern": "^[^/]+/[^/]*/[^/]+$"},
                "reason": {"type": "string", "minLength": 1},
            },
            "required": ["resource", "reason"],
        },
        "default": [],
    },
    ALLOWED_UIDS: {
        "type": "array",
        "description": "uids allowed in runAsUser (job containers need the runner's uid to "
        "write _runner_file_commands). Empty: any uid but 0.",
        "items": {"type": "integer", "minimum": 1},
        "default": [RUNNER_UID],
    },
    ALLOWED_CAPABILITIES: {
        "type": "array",
        "description": "Capabilities a container may add back after dropping ALL.",
        "items": {"type": "string"},
        "default": ["NET_BIND_SERVICE"],
    },
    ALLOWED_REGISTRIES: {
        "type": "array",
        "description": "Image reference prefixes allowed, e.g. ghcr.io/actions/. Empty: any.",
        "items": {"type": "string", "minLength": 1},
        "default": [],
    },
    ALLOWED_CONTAINER_MODES: {
        "type": "array",
        "description": "gha-runner-scale-set containerMode.type values allowed.",
        "items": {"type": "string", "enum": [*HOOK_MODES, "dind", ""]},
        "default": list(HOOK_MODES),
    },
    BASELINE_NAMESPACES: {
        "type": "array",
        "description": "Runner namespaces allowed to enforce Pod Security baseline, with why "
        "restricted cannot hold.",
        "items": _NAMESPACE_REASON_ITEM,
        "default": [],
    },
}


def config_schema(*keys: str) -> PolicyConfigSchema:
    """The config schema of a policy: ``exemptions`` plus the given keys."""
    wanted = [EXEMPTIONS, *(key for key in keys if key != EXEMPTIONS)]
    return PolicyConfigSchema(properties={key: dict(_SCHEMAS[key]) for key in wanted})


class ConfigError(ValueError):
    """Invalid policy configuration; the message names the key and the expected form."""


@dataclass(frozen=True)
class Exemption:
    """Resources (``Kind/namespace/name``, wildcards allowed) a policy skips, and why."""

    resource: str
    reason: str

    def matches(self, ref: ResourceRef) -> bool:
        """True if ``ref`` is one of the exempt resources."""
        return fnmatch.fnmatchcase(ref.key, self.resource)


@dataclass(frozen=True)
class NamespaceReason:
    """A namespace and the stated reason for treating it specially."""

    namespace: str
    reason: str


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one policy (defaults for keys it does not take)."""

    exemptions: tuple[Exemption, ...] = ()
    allowed_uids: frozenset[int] = frozenset({RUNNER_UID})
    allowed_capabilities: frozenset[str] = frozenset({"NET_BIND_SERVICE"})
    allowed_registries: tuple[str, ...] = ()
    allowed_container_modes: frozenset[str] = frozenset(HOOK_MODES)
    baseline_namespaces: dict[str, str] = field(default_factory=dict)

    def exemption_for(self, ref: ResourceRef) -> Exemption | None:
        """The first exemption covering ``ref``, if any."""
        return next((e for e in self.exemptions if e.matches(ref)), None)


def _list(config: Mapping[str, Any], key: str) -> list[Any]:
    """The list at ``key`` (empty when absent)."""
    value = config.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{key}: expected a list, got {type(value).__name__}")
    return value


def _reasoned(config: Mapping[str, Any], key: str, name_key: str) -> list[tuple[str, str]]:
    """``(name, reason)`` pairs from a list of objects with ``name_key`` and ``reason``."""
    pairs: list[tuple[str, str]] = []
    for index, item in enumerate(_list(config, key)):
        name = item.get(name_key) if isinstance(item, Mapping) else None
        reason = item.get("reason") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not name:
            raise ConfigError(
                f"{key}[{index}].{name_key}: required, e.g. "
                f'{{"{name_key}": "...", "reason": "why"}}'
            )
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigError(f"{key}[{index}].reason: required: say why ({name})")
        pairs.append((name, reason.strip()))
    return pairs


def _strings(config: Mapping[str, Any], key: str) -> list[str]:
    """A list of strings at ``key``."""
    values = _list(config, key)
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise ConfigError(f"{key}[{index}]: expected a string, got {value!r}")
    return values


def parse_settings(config: Mapping[str, Any] | None) -> Settings:
    """Validate a policy's config (as the engine passes it) into :class:`Settings`.

    Keys absent from ``config`` keep their defaults; unknown keys are ignored (the engine
    validates them against the declared schema first).
    """
    config = config or {}
    defaults = Settings()
    exemptions = []
    for resource, reason in _reasoned(config, EXEMPTIONS, "resource"):
        if resource.count("/") != 2:
            raise ConfigError(
                f"{EXEMPTIONS}: resource {resource!r} must be Kind/namespace/name, e.g. "
                "DaemonSet/openebs/openebs-zfs-localpv-node (Namespace//name when cluster-scoped)"
            )
        exemptions.append(Exemption(resource, reason))
    uids = defaults.allowed_uids
    if ALLOWED_UIDS in config:
        values = _list(config, ALLOWED_UIDS)
        for index, uid in enumerate(values):
            number = as_int(uid)  # the engine sends JSON numbers as floats
            if number is None or number < 1:
                raise ConfigError(f"{ALLOWED_UIDS}[{index}]: expected a uid > 0, got {uid!r}")
        uids = frozenset(int(uid) for uid in values)
    return Settings(
        exemptions=tuple(exemptions),
        allowed_uids=uids,
        allowed_capabilities=frozenset(_strings(config, ALLOWED_CAPABILITIES))
        if ALLOWED_CAPABILITIES in config
        else defaults.allowed_capabilities,
        allowed_registries=tuple(_strings(config, ALLOWED_REGISTRIES)),
        allowed_container_modes=frozenset(_strings(config, ALLOWED_CONTAINER_MODES))
        if ALLOWED_CONTAINER_MODES in config
        else defaults.allowed_container_modes,
        baseline_namespaces=dict(_reasoned(config, BASELINE_NAMESPACES, "namespace")),
    )
