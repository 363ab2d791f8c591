"""Read the stack config from the running Pulumi engine into :class:`StackConfig`."""

from __future__ import annotations

import json
from typing import Any

import pulumi.runtime
from pulumi.runtime import config as runtime_config

from components import constants as c
from components.config import SECRET_FIELD_ALIASES, SecretValue, StackConfig, validate_config

__all__ = ["engine_config", "load_stack_config", "raw_config"]


def engine_config() -> dict[str, tuple[str, bool]]:
    """Every config key the engine gave this program: its JSON text and whether it is secret.

    ``pulumi.Config`` reads one named key at a time, but unknown keys must be reported too, so
    the keys are listed here. Two sources, as the SDK's language host fills them (its
    ``pulumi-language-python-exec`` calls ``set_all_config(get_config_env(), ...)``): the
    ``PULUMI_CONFIG`` bag (public ``pulumi.runtime.get_config_env``) and the in-process map that
    ``set_all_config`` writes (the Automation API and mocks), which only the SDK's module
    variable ``pulumi.runtime.config.CONFIG`` lists. That variable is not exported by
    ``pulumi.runtime``: this is the one place that reads it, and
    tests/test_pulumi_config.py fails if the SDK renames or stops filling it.
    """
    entries = {**pulumi.runtime.get_config_env(), **runtime_config.CONFIG.get()}
    return {key: (text, pulumi.runtime.is_config_secret(key)) for key, text in entries.items()}


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
    for key, (text, secret) in engine_config().items():
        if not key.startswith(prefix):
            continue
        name = key.removeprefix(prefix)
        try:
            value = json.loads(text)
        except (TypeError, ValueError):
            value = text
        raw[name] = _seal(value) if secret else value
    return raw


def load_stack_config() -> StackConfig:
    """Validate the stack's config; on problems log each one and stop before any resource."""
    return validate_config(raw_config())
