"""The advisory ``policy-exemptions`` policy: every exemption applied, and every stale one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from ..exemptions import ExemptionLedger
from ..policy_kit import Rule

__all__ = ["POLICY_EXEMPTIONS", "RULES", "ExemptionReport", "report_exemptions"]


def report_exemptions(ledger: ExemptionLedger, report: ReportViolation) -> None:
    """Report each resource a policy skipped, and each configured exemption that matched none.

    Runs after every resource policy (stack policies run last, in the same process), from the
    ledger those policies fill; stack policies listed before this one are included too.
    """
    uses, unused = ledger.drain()
    for use in uses:
        report(use.message(), use.resource.urn or None)
    for policy, exemption in unused:
        report(
            f"exemption {exemption.resource!r} of policy {policy!r} matched no resource in this "
            f"stack ({exemption.reason}): remove it or fix the name",
            None,
        )


@dataclass(frozen=True, kw_only=True)
class ExemptionReport(Rule):
    """The rule that reports the run's ledger instead of checking resources."""

    def policy(self, ledger: ExemptionLedger) -> StackValidationPolicy:
        """A stack policy reporting what ``ledger`` holds when it runs."""

        def validate(args: StackValidationArgs, report: ReportViolation) -> None:
            del args
            report_exemptions(ledger, report)

        return StackValidationPolicy(
            name=self.name,
            description=self.description,
            validate=validate,
            enforcement_level=self.enforcement_level,
            config_schema=PolicyConfigSchema(properties={}),
            severity=self.severity,
        )


POLICY_EXEMPTIONS: Final = ExemptionReport(
    name="policy-exemptions",
    description="Lists every exemption applied in this run (advisory), so none is silent.",
    enforcement_level=EnforcementLevel.ADVISORY,
    severity=Severity.LOW,
)

#: The exemption report (must come after every other rule).
RULES: Final[tuple[Rule, ...]] = (POLICY_EXEMPTIONS,)
