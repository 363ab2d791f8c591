"""Read the stack config from the running Pulumi engine into :class:`StackConfig`."""

from __future__ import annotations

import json
from typing import Any

from pulumi.runtime import config as runtime_config

from components import constants as c
from components.config import SECRET_FIELD_ALIASES, SecretValue, StackConfig, validate_config

__all__ = ["load_stack_config", "raw_config"]


def _seal(value: Any) -> Any:
    """Wrap the secret fields of a decrypted, secret top-level value in SecretValue."""
    if isinstance(value, dict):
        return {
            k: SecretValue(v) if k in SECRET_FIELD_ALIASES and isinstance(v, str) else _seal(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_seal(v) for v in value]
    return value


def raw_config() -> dict[str, Any]:
    """Every ``arc-zfs-cache:*`` key of the stack, decoded, with secret fields sealed."""
    prefix = f"{c.CONFIG_NAMESPACE}:"
    raw: dict[str, Any] = {}
    entries = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    for key, text in entries.items():
        if not key.startswith(prefix):
            continue
        name = key.removeprefix(prefix)
        try:
            value = json.loads(text)
        except (TypeError, ValueError):
            value = text
        raw[name] = _seal(value) if runtime_config.is_config_secret(key) else value
    return raw


def load_stack_config() -> StackConfig:
    """Validate the stack's config; on problems log each one and stop before any resource."""
    return validate_config(raw_config())
