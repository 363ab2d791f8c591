"""Policies for GitHub Actions runner scale sets on Kubernetes: non-privileged job containers.

Modules: :mod:`.hook_merge` (the hook 0.7 job pod, pure), :mod:`.discovery` (what to check in
declared resources), :mod:`.config` (policy config), :mod:`.rules` (the policies) and
:mod:`.pack` (all policies, in order). Importing this package imports nothing heavy, so that
``from policy.arc_policy.hook_merge import merge_job_pod`` stays cheap.
"""

__all__ = [
    "config",
    "discovery",
    "exemptions",
    "hook_merge",
    "model",
    "pack",
    "policy_kit",
    "remediation",
    "rules",
    "testing",
    "values",
]
