"""Cache promotion: one cache's lineage of parent generations, moved forward safely.

The package, by layer (imports only go down this list):

- :mod:`.resource` — the ``CachePromotion`` dynamic resource and its typed args (Pulumi);
- :mod:`.provider` — the dynamic provider: the engine's calls mapped onto plan and steps;
- :mod:`.kube` and :mod:`.lease` — the cluster port and the Lease over lightkube (I/O);
- :mod:`.steps` — promote, reset, collect, start and retire, against the port;
- :mod:`.port` — the cluster and lease protocols the steps need, waits and the clock;
- :mod:`.plan`, :mod:`.gc`, :mod:`.manifests`, :mod:`.model` — the decisions and the
  objects, pure (neither Pulumi nor lightkube; a test and ``make lint`` check it).

``CachePromotion`` and ``CachePromotionArgs`` are loaded on first use, so that importing a
pure module of the package does not import Pulumi.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from components.promotion.resource import CachePromotion, CachePromotionArgs

__all__ = ["CachePromotion", "CachePromotionArgs"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        # Imported on first use, not at the top: see the module docstring.
        from components.promotion import resource  # noqa: PLC0415

        return getattr(resource, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
