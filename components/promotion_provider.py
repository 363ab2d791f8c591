"""Dynamic provider of CachePromotion.

Serialized with dill and run in the engine's provider process: API clients are built inside
the methods, and nothing here captures pulumi.Config, Outputs or locks.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

__all__ = ["CachePromotionProvider"]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class CachePromotionProvider(ResourceProvider):
    """Keeps a cache's current parent claim; the root generation is the one the stack created."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        """Adopt the root generation and the first builder volume."""
        outs = {
            **props,
            "parent_claim": props["root_claim"],
            "generation": 1,
            "builder_claim": props["builder_volume"],
            "promoted_at": _now(),
            "token": props.get("promote"),
        }
        return CreateResult(id_=f"{props['namespace']}/{props['cache']}", outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """Report which inputs changed; identity fields replace the resource."""
        keys = [k for k in news if not k.startswith("__") and olds.get(k) != news.get(k)]
        keys = [k for k in keys if k not in _OUTPUTS]
        replaces = [k for k in keys if k in ("namespace", "cache", "root_claim")]
        return DiffResult(changes=bool(keys), replaces=replaces, delete_before_replace=True)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Carry the current lineage forward with the new settings."""
        return UpdateResult(outs={**news, **{k: olds.get(k) for k in _OUTPUTS}})


_OUTPUTS = ("parent_claim", "generation", "builder_claim", "promoted_at", "token")
