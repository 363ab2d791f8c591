"""Read the project's keys of a ``Pulumi.<stack>.yaml`` file without the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from components import constants as c
from components.config.errors import ConfigError, ConfigProblem

__all__ = ["load_stack_file"]


def load_stack_file(path: Path) -> dict[str, Any]:
    """Read the ``arc-zfs-cache:*`` keys of a ``Pulumi.<stack>.yaml`` file (secrets stay sealed)."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError([ConfigProblem(str(path), f"cannot be read: {exc}")]) from None
    entries = document.get("config") or {}
    raw: dict[str, Any] = {}
    problems: list[ConfigProblem] = []
    for key, value in entries.items():
        namespace, _, name = str(key).partition(":")
        if namespace == c.CONFIG_NAMESPACE:
            raw[name] = value
        elif not name:
            problems.append(
                ConfigProblem(str(key), "has no namespace", f"{c.CONFIG_NAMESPACE}:{key}")
            )
    if problems:
        raise ConfigError(problems)
    return raw
