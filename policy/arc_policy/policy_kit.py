"""Rules from pure checks, and the Pulumi policies they become for one run of the pack.

A check is a function from what it inspects (a pod, a resource, the stack's resources) and
the policy's :class:`~.config.Settings` to :class:`~.model.Finding` objects. A *rule* names a
check and says how it is enforced (:class:`PodRule`, :class:`ResourceRule`,
:class:`StackRule`); other rules refer to it by the object, not by its name (the job pod
rules that ``mounted-hook-templates`` and the Pod Security levels reuse). :meth:`Rule.policy`
turns a rule into the named ``ResourceValidationPolicy`` or ``StackValidationPolicy`` of one
run: it parses the policy's config, drops findings on exempt resources, records them in that
run's :class:`~.exemptions.ExemptionLedger` (passed in, read by ``policy-exemptions``) and
reports each remaining finding as one violation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from .config import Settings, config_schema, parse_settings
from .discovery import Resource, iter_resources, pod_targets
from .exemptions import ExemptionLedger
from .model import Finding, PodKind, PodTarget

__all__ = [
    "PodCheck",
    "PodRemediation",
    "PodRule",
    "ResourceCheck",
    "ResourceCheckRule",
    "ResourceRule",
    "Rule",
    "StackCheck",
    "StackRule",
    "apply_findings",
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
    policy: str,
    settings: Settings,
    findings: Iterable[Finding],
    report: ReportViolation,
    ledger: ExemptionLedger,
) -> None:
    """Report findings, skipping (and recording in ``ledger``) those on exempt resources.

    A finding that carries its own exemption (a namespace at a configured ``baseline``) is
    recorded, never reported.
    """
    ledger.configure(policy, settings.exemptions)
    for finding in findings:
        exemption = finding.exemption or settings.exemption_for(finding.resource)
        if exemption is not None:
            ledger.record(policy, finding.resource, exemption)
            continue
        report(finding.message(), finding.resource.urn or None)


@dataclass(frozen=True, kw_only=True)
class Rule:
    """A named, described check and how it is enforced; :meth:`policy` makes it a policy."""

    name: str
    description: str
    config_keys: Sequence[str] = ()
    enforcement_level: EnforcementLevel = EnforcementLevel.MANDATORY
    severity: Severity = Severity.HIGH

    def policy(self, ledger: ExemptionLedger) -> Policy:
        """The Pulumi policy of this rule for one run, recording exemptions in ``ledger``."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class ResourceRule(Rule):
    """A rule checking one resource at a time, optionally remediating it."""

    remediation: PodRemediation | None = None
    remediation_steps: str | None = None

    def findings(self, resource: Resource, settings: Settings) -> Iterable[Finding]:
        """What the rule finds in ``resource``."""
        raise NotImplementedError

    def policy(self, ledger: ExemptionLedger) -> ResourceValidationPolicy:
        """A resource policy running the check on every resource (and the remediation)."""

        def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
            settings = parse_settings(args.get_config())
            found = self.findings(Resource.of(args), settings)
            apply_findings(self.name, settings, found, report, ledger)

        def remediate(args: ResourceValidationArgs) -> Mapping[str, Any] | None:
            assert self.remediation is not None
            resource = Resource.of(args)
            if parse_settings(args.get_config()).exemption_for(resource.ref) is not None:
                return None
            return self.remediation(resource, args.props)

        return ResourceValidationPolicy(
            name=self.name,
            description=self.description,
            validate=validate,
            # The SDK accepts a plain (non-awaitable) result; its annotation says otherwise.
            remediate=cast(Any, remediate) if self.remediation is not None else None,
            enforcement_level=self.enforcement_level,
            config_schema=config_schema(*self.config_keys),
            severity=self.severity,
            remediation_steps=self.remediation_steps,
        )


@dataclass(frozen=True, kw_only=True)
class ResourceCheckRule(ResourceRule):
    """A resource rule whose ``check`` takes the whole resource."""

    check: ResourceCheck

    def findings(self, resource: Resource, settings: Settings) -> Iterable[Finding]:
        """What ``check`` finds in ``resource``."""
        return self.check(resource, settings)


@dataclass(frozen=True, kw_only=True)
class PodRule(ResourceRule):
    """A resource rule running ``check`` on every pod of ``kinds`` a resource declares."""

    check: PodCheck
    kinds: tuple[PodKind, ...]

    def findings(self, resource: Resource, settings: Settings) -> Iterator[Finding]:
        """What ``check`` finds in each pod of ``kinds`` the resource declares."""
        for target in pod_targets(resource, self.kinds):
            yield from self.check(target, settings)


@dataclass(frozen=True, kw_only=True)
class StackRule(Rule):
    """A rule checking all resources of the stack at once."""

    check: StackCheck

    def policy(self, ledger: ExemptionLedger) -> StackValidationPolicy:
        """A stack policy running the check on all resources of the stack."""

        def validate(args: StackValidationArgs, report: ReportViolation) -> None:
            settings = parse_settings(args.get_config())
            found = self.check(iter_resources(args.resources), settings)
            apply_findings(self.name, settings, found, report, ledger)

        return StackValidationPolicy(
            name=self.name,
            description=self.description,
            validate=validate,
            enforcement_level=self.enforcement_level,
            config_schema=config_schema(*self.config_keys),
            severity=self.severity,
        )
