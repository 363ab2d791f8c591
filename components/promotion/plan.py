"""What a run of CachePromotion does to a cache's lineage: one decision, from one pointer.

``check`` (which predicts the claims a preview shows), ``diff`` (which says in words what an
update would do, and whether there is one) and ``update`` (which does it) all call
:func:`plan` on the pointer they read, so the three can never disagree. The tokens a run
records in the stack are decided once, by :func:`recorded_tokens`. Pure: no API calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from components import constants as c
from components.promotion.gc import human_duration
from components.promotion.model import Pointer, PromotionInputs, builder_index_of

__all__ = [
    "Plan",
    "Tokens",
    "describe_adoption",
    "describe_promotion",
    "describe_reset",
    "plan",
    "pointer_from_state",
    "recorded_tokens",
]


@dataclass(frozen=True, slots=True)
class Tokens:
    """A promote token and a reset token: as requested by config, or as the stack recorded."""

    promote: str | None = None
    reset: str | None = None

    @classmethod
    def requested(cls, inputs: PromotionInputs) -> Tokens:
        """The tokens the stack's config asks for."""
        return cls(inputs.promote, inputs.reset_builder)

    @classmethod
    def requested_in(cls, props: Mapping[str, Any]) -> Tokens:
        """The tokens an input property bag asks for (values may still be unknown)."""
        return cls(_text(props.get("promote")), _text(props.get("reset_builder")))

    @classmethod
    def recorded(cls, state: Mapping[str, Any]) -> Tokens:
        """The tokens the stack's state says were applied (the ``token`` outputs)."""
        return cls(_text(state.get("token")), _text(state.get("reset_token")))

    @classmethod
    def of(cls, pointer: Pointer) -> Tokens:
        """The last tokens the pointer applied."""
        return cls(pointer.promote_token, pointer.reset_token)

    def due(self, recorded: Tokens) -> tuple[bool, bool]:
        """Whether each requested token differs from the one the stack ``recorded``: that is
        a change of the resource (an update runs)."""
        return (
            self.promote is not None and self.promote != recorded.promote,
            self.reset is not None and self.reset != recorded.reset,
        )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Plan:
    """What one run does, decided from the pointer it read and the tokens.

    ``promote``/``reset``: the pointer has not applied the requested token, so an update acts.
    ``promote_due``/``reset_due``: the requested token differs from what the stack recorded,
    so the resource has a change (an update runs); when due but already applied on the
    cluster (a run that crashed before Pulumi saved its outputs), the update adopts it.
    """

    cache: str
    before: Pointer
    #: After the promotion alone (``before`` if there is none).
    promoted: Pointer
    #: After the promotion and the reset: what the run leaves.
    after: Pointer
    promote: bool
    reset: bool
    promote_due: bool
    reset_due: bool
    requested: Tokens

    @property
    def adopt_promote(self) -> bool:
        """The promote token is new to the stack but already applied on the cluster."""
        return self.promote_due and not self.promote

    @property
    def adopt_reset(self) -> bool:
        """The reset token is new to the stack but already applied on the cluster."""
        return self.reset_due and not self.reset

    @property
    def due(self) -> bool:
        """A token asks for a change of the resource (an update runs)."""
        return self.promote_due or self.reset_due

    def describe(self, retention: timedelta) -> list[str]:
        """What an update will do about the tokens, in words (``retention``: how long a
        replaced builder volume is kept)."""
        lines: list[str] = []
        if self.promote_due and self.requested.promote is not None:
            if self.promote:
                lines.append(describe_promotion(self.cache, self.before))
            else:
                lines.append(
                    describe_adoption(self.cache, "promote", self.requested.promote, self.before)
                )
        if self.reset_due and self.requested.reset is not None:
            if self.reset:
                # After the promotion described above: the new builder clones the new parent.
                parent = self.promoted if self.promote_due else self.before
                lines.append(describe_reset(self.cache, parent, human_duration(retention)))
            else:
                lines.append(
                    describe_adoption(self.cache, "reset", self.requested.reset, self.before)
                )
        return lines


def plan(cache: str, pointer: Pointer, requested: Tokens, recorded: Tokens, now: datetime) -> Plan:
    """Decide what a run does to ``cache`` whose pointer is ``pointer``.

    A token only ever triggers by taking a new value: removing it from config (None) asks for
    nothing, and a token the pointer remembers was already acted on (possibly by a run that
    crashed before Pulumi recorded it, or by a concurrent run with the same token).
    """
    promote = requested.promote is not None and not pointer.promote_applied(requested.promote)
    reset = requested.reset is not None and not pointer.reset_applied(requested.reset)
    promoted = pointer.promoted(cache, requested.promote, now) if promote else pointer
    promote_due, reset_due = requested.due(recorded)
    return Plan(
        cache=cache,
        before=pointer,
        promoted=promoted,
        after=promoted.reset(cache, requested.reset) if reset else promoted,
        promote=promote,
        reset=reset,
        promote_due=promote_due,
        reset_due=reset_due,
        requested=requested,
    )


def recorded_tokens(requested: Tokens, pointer: Pointer, otherwise: Tokens) -> Tokens:
    """The tokens the stack records: each requested one once ``pointer`` has applied it,
    else ``otherwise`` (what the stack had, or on creation what the pointer had)."""
    promote, reset = requested.promote, requested.reset
    return Tokens(
        promote if promote is not None and pointer.promote_applied(promote) else otherwise.promote,
        reset if reset is not None and pointer.reset_applied(reset) else otherwise.reset,
    )


def pointer_from_state(inputs: PromotionInputs, state: Mapping[str, Any]) -> Pointer:
    """What the stack's state says the pointer is (used when the cluster has none, or cannot
    be read)."""
    builder = str(state.get("builder_claim") or inputs.builder_volume)
    return Pointer(
        generation=int(state.get("generation") or 1),
        parent_claim=str(state.get("parent_claim") or inputs.root_claim),
        builder_index=builder_index_of(builder) or 1,
        builder_claim=builder,
        promote_token=state.get("token"),
        reset_token=state.get("reset_token"),
        promoted_at=str(state.get("promoted_at") or ""),
    )


# --- What a run will do, in words (shown by preview and logged by update) --------------------


def describe_promotion(cache: str, pointer: Pointer) -> str:
    """``promote gcc12: gen 3 → gen 4 from gcc12-work-2``."""
    return (
        f"promote {cache}: gen {pointer.generation} → gen {pointer.generation + 1} "
        f"from {pointer.builder_claim}"
    )


def describe_reset(cache: str, pointer: Pointer, retention: str) -> str:
    """``reset gcc12 builder: gcc12-work-2 → gcc12-work-3 from gcc12-gen-4 (…)``."""
    return (
        f"reset {cache} builder: {pointer.builder_claim} → "
        f"{c.builder_volume_name(cache, pointer.builder_index + 1)} from {pointer.parent_claim} "
        f"({pointer.builder_claim} is kept {retention} for troubleshooting)"
    )


def describe_adoption(cache: str, what: str, token: str, pointer: Pointer) -> str:
    """A token already applied on the cluster (by a run that crashed before Pulumi saved it)."""
    return (
        f"{what} {cache}: token {token!r} was already applied on the cluster "
        f"(gen {pointer.generation}, builder {pointer.builder_claim}); adopting it"
    )
