"""Plain values out of Pulumi policy properties, with unknowns made explicit.

The policy SDK hands resource properties over as read-only proxies that raise on access to a
value unknown during preview (an Output not yet resolved). Rules want plain ``dict``/``list``
data they can walk and merge, and must *skip* a check on an unknown value rather than fail or
guess. :func:`to_plain` converts the proxies, replacing every unknown by the :data:`UNKNOWN`
sentinel; the small accessors below return ``None`` for anything missing, mistyped or unknown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from pulumi_policy import Secret

__all__ = [
    "UNKNOWN",
    "UNKNOWN_STRING",
    "Unknown",
    "as_int",
    "as_list",
    "as_mapping",
    "as_str",
    "get_in",
    "is_unknown",
    "raw_copy",
    "to_plain",
]

#: The engine's sentinel for an unknown string (an Output not resolved during preview).
UNKNOWN_STRING: Final = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
# The sentinel strings the Pulumi engine uses for unknown values (pulumi_policy.proxy).
_UNKNOWN_SENTINELS: Final = frozenset(
    {
        "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",  # boolean
        "3eeb2bf0-c639-47a8-9e75-3b44932eb421",  # number
        UNKNOWN_STRING,
        "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",  # array
        "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
        "e48ece36-62e2-4504-bad9-02848725956a",  # archive
        "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",  # object
    }
)


class Unknown:
    """Type of :data:`UNKNOWN`: a value not known until the deployment runs."""

    _instance: Unknown | None = None

    def __new__(cls) -> Unknown:
        """Return the single instance."""
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        """Render as ``UNKNOWN``."""
        return "UNKNOWN"

    def __bool__(self) -> bool:
        """Unknown is never truthy, so ``if value:`` never treats it as set."""
        return False


#: A value that is unknown during preview (the check that needs it is skipped).
UNKNOWN: Final = Unknown()


def is_unknown(value: object) -> bool:
    """True if ``value`` is :data:`UNKNOWN` or one of the engine's unknown sentinel strings."""
    return value is UNKNOWN or (isinstance(value, str) and value in _UNKNOWN_SENTINELS)


def _target(value: Mapping[Any, Any] | Sequence[Any]) -> Any:
    """The raw container behind a pulumi_policy proxy, or ``value`` itself."""
    if isinstance(value, dict | list | tuple):
        return value
    try:
        # The SDK's unknown-checking and secret-preserving proxies expose their raw target here.
        return value["__target"]  # type: ignore[call-overload]
    except (KeyError, IndexError, TypeError):
        return value


def to_plain(value: Any) -> Any:
    """Deep-convert policy SDK properties to ``dict``/``list``/scalars.

    Proxies are unwrapped without triggering their unknown checks, secrets are unwrapped to
    their plain value, and unknowns become :data:`UNKNOWN`. Plain data passes through (copied).
    """
    if is_unknown(value):
        return UNKNOWN
    if isinstance(value, Secret):
        return to_plain(value.value)
    return _copy_containers(value, to_plain)


def _copy_containers(value: Any, item: Callable[[Any], Any]) -> Any:
    """``value`` with its mappings and sequences (proxies unwrapped) copied, each item by
    ``item``; anything else as it is."""
    if isinstance(value, str | bytes | int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        raw = _target(value)
        return {str(key): item(raw[key]) for key in raw}
    if isinstance(value, Sequence):
        raw = _target(value)
        return [item(raw[i]) for i in range(len(raw))]
    return value


def as_mapping(value: object) -> dict[str, Any] | None:
    """``value`` if it is a known mapping, else ``None``."""
    return value if isinstance(value, dict) else None


def as_list(value: object) -> list[Any]:
    """``value`` if it is a known list, else an empty list."""
    return value if isinstance(value, list) else []


def as_str(value: object) -> str | None:
    """``value`` if it is a known string, else ``None``."""
    return value if isinstance(value, str) and not is_unknown(value) else None


def as_int(value: object) -> int | None:
    """``value`` if it is a known integer (not a bool), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def get_in(value: object, *keys: str) -> Any:
    """Walk nested mappings; ``None`` when a key is missing, UNKNOWN when a step is unknown."""
    current: Any = value
    for key in keys:
        if is_unknown(current):
            return UNKNOWN
        if not isinstance(current, dict):
            return None
        current = current.get(key)
    return UNKNOWN if is_unknown(current) else current


def raw_copy(value: Any) -> Any:
    """Deep copy of SDK properties as the engine sent them, for a remediation to edit.

    Unlike :func:`to_plain`, secrets stay wrapped (so the engine keeps them secret) and
    unknowns keep their sentinel strings (so they stay unknown).
    """
    if isinstance(value, Secret):
        return Secret(raw_copy(value.value))
    return _copy_containers(value, raw_copy)
