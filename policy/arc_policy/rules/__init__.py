"""The rules, one module per area; each module lists its rules in ``RULES``."""

__all__ = [
    "container_security",
    "credentials",
    "exemptions_report",
    "hook_pods",
    "images",
    "levels",
    "listener",
    "namespaces",
    "pod_security",
    "runner_mode",
]
