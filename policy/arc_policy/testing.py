"""Run the pack's policies without the Pulumi engine: for unit tests and quick experiments.

Builds the argument objects the engine would pass (properties wrapped in the SDK's
unknown-checking proxy, as in a real preview), runs resource policies on each resource and
then stack policies on all of them, in pack order, and collects the violations::

    from policy.arc_policy.testing import declared, run_pack

    report = run_pack([declared("kubernetes:core/v1:ConfigMap", "tmpl", props)])
    assert report.by_policy("no-privilege-escalation")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import unknown_checking_proxy
from pulumi_policy.secret import secrets_preserving_proxy

from .exemptions import ExemptionLedger
from .pack import all_policies
from .policy_kit import ResourceRule, Rule
from .values import UNKNOWN_STRING

__all__ = [
    "UNKNOWN_STRING",
    "Declared",
    "PackReport",
    "Violation",
    "declared",
    "remediation_args",
    "resource_args",
    "run_pack",
    "run_resource_policy",
    "run_stack_policy",
    "stack_args",
]


@dataclass(frozen=True)
class Declared:
    """A resource as a program declares it: type token, Pulumi name, input properties."""

    type: str
    name: str
    props: Mapping[str, Any]
    #: Namespace of the Kubernetes provider the resource uses, if any.
    provider_namespace: str | None = None
    #: URN of the parent (e.g. a Chart), if any.
    parent: str | None = None

    @property
    def urn(self) -> str:
        """A URN for the resource (stack ``test``, project ``arc-zfs-cache``)."""
        return f"urn:pulumi:test::arc-zfs-cache::{self.type}::{self.name}"


def declared(
    type_: str,
    name: str,
    props: Mapping[str, Any],
    *,
    provider_namespace: str | None = None,
    parent: str | None = None,
) -> Declared:
    """Shorthand for :class:`Declared`."""
    return Declared(type_, name, props, provider_namespace, parent)


def _options(parent: str | None) -> PolicyResourceOptions:
    """Default resource options."""
    return PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=parent,
    )


def _provider(resource: Declared) -> PolicyProviderResource | None:
    """A Kubernetes provider with the resource's provider namespace, if any."""
    if resource.provider_namespace is None:
        return None
    return PolicyProviderResource(
        "pulumi:providers:kubernetes",
        unknown_checking_proxy({"namespace": resource.provider_namespace}),
        "urn:pulumi:test::arc-zfs-cache::pulumi:providers:kubernetes::k8s",
        "k8s",
    )


def resource_args(
    resource: Declared,
    config: Mapping[str, Any] | None = None,
    proxy: Callable[[Any], Any] = unknown_checking_proxy,
) -> ResourceValidationArgs:
    """The arguments the engine passes a resource policy for ``resource``, its properties
    behind ``proxy`` (the SDK's unknown-checking one, as in a preview)."""
    return ResourceValidationArgs(
        resource.type,
        proxy(dict(resource.props)),
        resource.urn,
        resource.name,
        _options(resource.parent),
        _provider(resource),
        dict(config) if config is not None else None,
    )


def remediation_args(
    resource: Declared, config: Mapping[str, Any] | None = None
) -> ResourceValidationArgs:
    """The arguments the engine passes a remediation: secrets (``pulumi_policy.Secret``
    values in ``resource.props``) stay wrapped behind the SDK's secret-preserving proxy."""
    return resource_args(resource, config, secrets_preserving_proxy)


def stack_args(
    resources: Iterable[Declared], config: Mapping[str, Any] | None = None
) -> StackValidationArgs:
    """The arguments the engine passes a stack policy."""
    policy_resources = [
        PolicyResource(
            r.type,
            unknown_checking_proxy(dict(r.props)),
            r.urn,
            r.name,
            _options(r.parent),
            _provider(r),
            None,
            [],
            {},
        )
        for r in resources
    ]
    return StackValidationArgs(policy_resources, dict(config) if config is not None else None)


@dataclass(frozen=True)
class Violation:
    """One reported violation."""

    policy: str
    message: str
    urn: str | None
    level: EnforcementLevel


def _bound(policy: Policy | Rule, ledger: ExemptionLedger | None) -> Any:
    """``policy``, or the policy of rule ``policy`` recording in ``ledger`` (a new one)."""
    if isinstance(policy, Rule):
        return policy.policy(ExemptionLedger() if ledger is None else ledger)
    return policy


def run_resource_policy(
    policy: ResourceValidationPolicy | ResourceRule,
    resource: Declared,
    config: Mapping[str, Any] | None = None,
    ledger: ExemptionLedger | None = None,
) -> list[str]:
    """Messages ``policy`` (or a rule's policy, recording in ``ledger``) reports for
    ``resource``."""
    messages: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        del urn
        messages.append(message)

    _bound(policy, ledger).validate(resource_args(resource, config), report)
    return messages


def run_stack_policy(
    policy: StackValidationPolicy | Rule,
    resources: Iterable[Declared],
    config: Mapping[str, Any] | None = None,
    ledger: ExemptionLedger | None = None,
) -> list[tuple[str, str | None]]:
    """``(message, urn)`` pairs ``policy`` (or a stack rule's policy, recording in ``ledger``)
    reports for the stack."""
    reported: list[tuple[str, str | None]] = []

    def report(message: str, urn: str | None = None) -> None:
        reported.append((message, urn))

    _bound(policy, ledger).validate(stack_args(resources, config), report)
    return reported


@dataclass
class PackReport:
    """Every violation of one run of the pack."""

    violations: list[Violation] = field(default_factory=list)

    def by_policy(self, name: str) -> list[str]:
        """Messages of one policy."""
        return [v.message for v in self.violations if v.policy == name]

    @property
    def blocking(self) -> list[Violation]:
        """Violations that fail a deployment (mandatory)."""
        return [v for v in self.violations if v.level is EnforcementLevel.MANDATORY]

    def policies(self) -> set[str]:
        """Names of the policies that reported something."""
        return {v.policy for v in self.violations}


def run_pack(
    resources: Sequence[Declared],
    config: Mapping[str, Mapping[str, Any]] | None = None,
    policies: Sequence[Policy] | None = None,
) -> PackReport:
    """Run the pack like the engine: resource policies per resource, then stack policies.

    ``config`` is keyed by policy name, like a ``--policy-pack-config`` file; an
    ``enforcementLevel`` there overrides the policy's level.
    """
    config = config or {}
    report = PackReport()
    chosen = list(policies) if policies is not None else all_policies()

    def level(policy: Policy) -> EnforcementLevel:
        configured = config.get(policy.name, {}).get("enforcementLevel")
        if configured is not None:
            return EnforcementLevel(configured)
        return policy.enforcement_level or EnforcementLevel.MANDATORY

    def settings(policy: Policy) -> dict[str, Any]:
        return {k: v for k, v in config.get(policy.name, {}).items() if k != "enforcementLevel"}

    for resource in resources:
        for policy in chosen:
            if isinstance(policy, ResourceValidationPolicy):
                if level(policy) is EnforcementLevel.DISABLED:
                    continue
                for message in run_resource_policy(policy, resource, settings(policy)):
                    report.violations.append(
                        Violation(policy.name, message, resource.urn, level(policy))
                    )
    for policy in chosen:
        if isinstance(policy, StackValidationPolicy):
            if level(policy) is EnforcementLevel.DISABLED:
                continue
            for message, urn in run_stack_policy(policy, resources, settings(policy)):
                report.violations.append(Violation(policy.name, message, urn, level(policy)))
    return report
