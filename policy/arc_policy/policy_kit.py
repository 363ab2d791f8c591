"""Build Pulumi policies from pure checks: config parsing, exemptions and reporting in one place.

A check is a function from what it inspects (a pod, a resource, the stack's resources) and
the policy's :class:`~.config.Settings` to :class:`~.model.Finding` objects. The builders here
turn a check into a named ``ResourceValidationPolicy`` or ``StackValidationPolicy`` that
parses its config, drops findings on exempt resources (recording them for the
``policy-exemptions`` report) and reports each remaining finding as one violation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from .config import Settings, config_schema, parse_settings
from .discovery import Resource, iter_resources, pod_targets
from .exemptions import LEDGER
from .model import Finding, PodKind, PodTarget

__all__ = [
    "PodCheck",
    "PodRemediation",
    "ResourceCheck",
    "StackCheck",
    "apply_findings",
    "pod_policy",
    "resource_policy",
    "stack_policy",
]

#: Checks one pod.
PodCheck = Callable[[PodTarget, Settings], Iterable[Finding]]
#: Checks one resource.
ResourceCheck = Callable[[Resource, Settings], Iterable[Finding]]
#: Checks all resources of the stack.
StackCheck = Callable[[list[Resource], Settings], Iterable[Finding]]
#: Returns new properties for a resource (raw SDK values), or ``None`` to leave it alone.
PodRemediation = Callable[[Resource, Mapping[str, Any]], Mapping[str, Any] | None]


def apply_findings(
    policy: str, settings: Settings, findings: Iterable[Finding], report: ReportViolation
) -> None:
    """Report findings, skipping (and recording) those on exempt resources."""
    LEDGER.configure(policy, settings.exemptions)
    for finding in findings:
        exemption = settings.exemption_for(finding.resource)
        if exemption is not None:
            LEDGER.record(policy, finding.resource, exemption)
            continue
        report(finding.message(), finding.resource.urn or None)


def resource_policy(
    name: str,
    description: str,
    check: ResourceCheck,
    *,
    config_keys: Sequence[str] = (),
    enforcement_level: EnforcementLevel = EnforcementLevel.MANDATORY,
    severity: Severity = Severity.HIGH,
    remediation: PodRemediation | None = None,
    remediation_steps: str | None = None,
) -> ResourceValidationPolicy:
    """A resource policy running ``check`` on every resource (and ``remediation`` if given)."""

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        settings = parse_settings(args.get_config())
        apply_findings(name, settings, check(Resource.from_args(args), settings), report)

    def remediate(args: ResourceValidationArgs) -> Mapping[str, Any] | None:
        assert remediation is not None
        resource = Resource.from_args(args)
        if parse_settings(args.get_config()).exemption_for(resource.ref) is not None:
            return None
        return remediation(resource, args.props)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        # The SDK accepts a plain (non-awaitable) result; its annotation says otherwise.
        remediate=cast(Any, remediate) if remediation is not None else None,
        enforcement_level=enforcement_level,
        config_schema=config_schema(*config_keys),
        severity=severity,
        remediation_steps=remediation_steps,
    )


def pod_policy(
    name: str,
    description: str,
    check: PodCheck,
    *,
    kinds: Sequence[PodKind],
    config_keys: Sequence[str] = (),
    enforcement_level: EnforcementLevel = EnforcementLevel.MANDATORY,
    severity: Severity = Severity.HIGH,
    remediation: PodRemediation | None = None,
    remediation_steps: str | None = None,
) -> ResourceValidationPolicy:
    """A resource policy running ``check`` on every pod of ``kinds`` a resource declares."""

    def on_resource(resource: Resource, settings: Settings) -> Iterable[Finding]:
        for target in pod_targets(resource, kinds):
            yield from check(target, settings)

    return resource_policy(
        name,
        description,
        on_resource,
        config_keys=config_keys,
        enforcement_level=enforcement_level,
        severity=severity,
        remediation=remediation,
        remediation_steps=remediation_steps,
    )


def stack_policy(
    name: str,
    description: str,
    check: StackCheck,
    *,
    config_keys: Sequence[str] = (),
    enforcement_level: EnforcementLevel = EnforcementLevel.MANDATORY,
    severity: Severity = Severity.HIGH,
) -> StackValidationPolicy:
    """A stack policy running ``check`` on all resources of the stack."""

    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        settings = parse_settings(args.get_config())
        apply_findings(name, settings, check(iter_resources(args.resources), settings), report)

    return StackValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=enforcement_level,
        config_schema=config_schema(*config_keys),
        severity=severity,
    )
