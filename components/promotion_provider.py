"""Where stacks deployed before components/promotion/ find their CachePromotion provider.

The engine stores each dynamic resource's provider in its state, pickled by reference to
``components.promotion_provider.CachePromotionProvider``, and deserialises that very
reference for ``read`` and ``delete`` (pulumi.dynamic.__main__). Until every stack has run
``pulumi up`` once with the package (which rewrites the reference), this name must resolve.
"""

from __future__ import annotations

from components.promotion.provider import CachePromotionProvider

__all__ = ["CachePromotionProvider"]
