"""Policies for GitHub Actions runner scale sets on Kubernetes: non-privileged job containers.

Modules: :mod:`.hook_merge` (the pods hooks 0.7 and 0.8 create, pure), :mod:`.listener` (the
listener pod, pure), :mod:`.scale_set_chart` (the runner pod the scale-set chart renders, pure),
:mod:`.discovery` (what to check in declared resources), :mod:`.config` (policy config),
:mod:`.policy_kit` (rules and the policies of one run), :mod:`.rules` (the rules) and
:mod:`.pack` (all rules, in order). Importing this package imports nothing heavy, so that
``from policy.arc_policy.hook_merge import merge_job_pod`` stays cheap.
"""

__all__ = [
    "config",
    "discovery",
    "exemptions",
    "hook_merge",
    "listener",
    "model",
    "pack",
    "policy_kit",
    "remediation",
    "rules",
    "scale_set_chart",
    "testing",
    "values",
]
