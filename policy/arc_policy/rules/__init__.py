"""The rules, one module per area; each module lists its policies in ``POLICIES``."""

__all__ = [
    "container_security",
    "credentials",
    "exemptions_report",
    "images",
    "listener",
    "namespaces",
    "pod_security",
    "runner_mode",
]
