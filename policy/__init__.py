"""The arc-zfs-cache CrossGuard policy pack (run it with ``pulumi preview --policy-pack policy``).

This file makes ``policy`` importable from the repository root, so that the program's tests can
reuse the pure hook-merge functions: ``from policy.arc_policy.hook_merge import merge_job_pod``.
"""

__all__: list[str] = []
