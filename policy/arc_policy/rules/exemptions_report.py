"""The advisory ``policy-exemptions`` policy: every exemption applied, and every stale one."""

from __future__ import annotations

from typing import Final

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from ..exemptions import LEDGER

__all__ = ["POLICIES", "POLICY_EXEMPTIONS", "report_exemptions"]


def report_exemptions(args: StackValidationArgs, report: ReportViolation) -> None:
    """Report each resource a policy skipped, and each configured exemption that matched none.

    Runs after every resource policy (stack policies run last, in the same process), from the
    ledger those policies fill; stack policies listed before this one are included too.
    """
    del args
    uses, unused = LEDGER.drain()
    for use in uses:
        report(use.message(), use.resource.urn or None)
    for policy, exemption in unused:
        report(
            f"exemption {exemption.resource!r} of policy {policy!r} matched no resource in this "
            f"stack ({exemption.reason}): remove it or fix the name",
            None,
        )


POLICY_EXEMPTIONS: Final = StackValidationPolicy(
    name="policy-exemptions",
    description="Lists every exemption applied in this run (advisory), so none is silent.",
    validate=report_exemptions,
    enforcement_level=EnforcementLevel.ADVISORY,
    config_schema=PolicyConfigSchema(properties={}),
    severity=Severity.LOW,
)

#: The exemption report (must come after every other policy).
POLICIES: Final[list[StackValidationPolicy]] = [POLICY_EXEMPTIONS]
