"""Unit tier: the one decision check, diff and update share (components/promotion/plan.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from components.promotion.model import Pointer, PromotionInputs
from components.promotion.plan import (
    Plan,
    Tokens,
    describe_promotion,
    describe_reset,
    plan,
    pointer_from_state,
    recorded_tokens,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
POINTER = Pointer(
    generation=3,
    parent_claim="gcc12-gen-3",
    builder_index=2,
    builder_claim="gcc12-work-2",
    promote_token="abc",
    promoted_at="2026-11-23T10:00:00Z",
    promote_history=("x", "abc"),
)
WEEK = timedelta(days=7)


def decide(
    promote: str | None = None, reset: str | None = None, recorded: Tokens | None = None
) -> Plan:
    return plan("gcc12", POINTER, Tokens(promote, reset), recorded or Tokens("abc"), NOW)


def test_tokens_trigger_only_by_taking_a_new_value() -> None:
    assert not decide(None).promote
    assert not decide("abc").promote
    assert not decide("x").promote  # applied earlier: a late duplicate is adopted
    assert decide("new").promote
    assert decide(reset="r").reset and not decide().reset
    # What the stack recorded decides whether there is a change at all.
    assert Tokens("b").due(Tokens("a"))[0]
    assert not Tokens("a").due(Tokens("a"))[0] and not Tokens(None).due(Tokens("a"))[0]


def test_plan_messages_say_what_will_happen() -> None:
    assert describe_promotion("gcc12", POINTER) == "promote gcc12: gen 3 → gen 4 from gcc12-work-2"
    assert describe_reset("gcc12", POINTER, "7d") == (
        "reset gcc12 builder: gcc12-work-2 → gcc12-work-3 from gcc12-gen-3 "
        "(gcc12-work-2 is kept 7d for troubleshooting)"
    )


def test_a_promotion_and_a_reset_move_both_claims_and_are_said_in_order() -> None:
    decided = decide("new", "r1")
    assert (decided.after.generation, decided.after.parent_claim) == (4, "gcc12-gen-4")
    assert decided.after.builder_claim == "gcc12-work-3"
    assert decided.promoted.builder_claim == "gcc12-work-2"
    assert decided.due and not decided.adopt_promote and not decided.adopt_reset
    assert decided.describe(WEEK) == [
        "promote gcc12: gen 3 → gen 4 from gcc12-work-2",
        # The new builder volume clones the generation the promotion makes.
        "reset gcc12 builder: gcc12-work-2 → gcc12-work-3 from gcc12-gen-4 "
        "(gcc12-work-2 is kept 7d for troubleshooting)",
    ]


def test_a_token_applied_on_the_cluster_but_not_recorded_is_adopted() -> None:
    decided = decide("x", recorded=Tokens("abc"))
    assert decided.due and decided.adopt_promote and not decided.promote
    assert decided.after == POINTER
    (line,) = decided.describe(WEEK)
    assert "token 'x' was already applied on the cluster" in line and "adopting it" in line


def test_nothing_due_says_nothing_even_if_the_pointer_differs() -> None:
    # The stack recorded the token: no update, whatever the pointer remembers.
    decided = plan("gcc12", POINTER, Tokens("gone"), Tokens("gone"), NOW)
    assert not decided.due and decided.describe(WEEK) == []
    assert decided.promote  # check still predicts what an update would make


def test_tokens_are_recorded_once_applied_else_kept() -> None:
    after = POINTER.promoted("gcc12", "new", NOW)
    assert recorded_tokens(Tokens("new", "r"), after, Tokens("abc", "r0")) == Tokens("new", "r0")
    assert recorded_tokens(Tokens(None, None), after, Tokens("abc", None)) == Tokens("abc", None)


def test_the_stack_state_stands_in_for_a_missing_pointer() -> None:
    inputs = PromotionInputs.from_props(
        {
            "namespace": "arc-runners",
            "cache": "gcc12",
            "size": "10Gi",
            "node": "zfs-1",
            "parent_storage_class": "c",
            "snapshot_class": "s",
            "lease_seconds": 300,
            "grace_seconds": 900,
            "retention_seconds": 604800,
            "ready_timeout_seconds": 300,
        }
    )
    state = {"generation": 3, "parent_claim": "gcc12-gen-3", "builder_claim": "gcc12-work-2"}
    pointer = pointer_from_state(inputs, {**state, "token": "abc"})
    assert (pointer.generation, pointer.builder_index, pointer.promote_token) == (3, 2, "abc")
    fresh = pointer_from_state(inputs, {})
    assert (fresh.parent_claim, fresh.builder_claim, fresh.builder_index) == (
        "gcc12-gen-1",
        "gcc12-work-1",
        1,
    )
