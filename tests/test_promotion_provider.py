"""Unit tier: the provider's serialisation, its read-only diff and check, without a cluster."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any

import dill
import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime.rpc import UNKNOWN

from components.promotion.model import PromotionInputs
from components.promotion.provider import OUTPUTS, CachePromotionProvider
from tests.harness import ROOT

PROPS: dict[str, Any] = {
    "namespace": "arc-runners",
    "cache": "gcc12",
    "root_claim": "gcc12-gen-1",
    "builder_volume": "gcc12-work-1",
    "size": "10Gi",
    "node": "zfs-1",
    "parent_storage_class": "arc-zfs-parents",
    "snapshot_class": "arc-zfs-snapshots",
    "lease_seconds": 300,
    "grace_seconds": 900,
    "retention_seconds": 604800,
    "ready_timeout_seconds": 300,
    "promote": "abc",
    # Nothing listens here: diff must fall back to the stack's state, quickly.
    "kubeconfig": "/nonexistent/kubeconfig",
}
OLDS: dict[str, Any] = {
    **PROPS,
    "parent_claim": "gcc12-gen-3",
    "generation": 3,
    "builder_claim": "gcc12-work-2",
    "promoted_at": "2026-11-23T10:00:00Z",
    "token": "abc",
    "reset_token": None,
    "report": [],
}


def diff(news: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> tuple[Any, str]:
    capsys.readouterr()
    result = CachePromotionProvider().diff("arc-runners/gcc12", OLDS, news)
    return result, capsys.readouterr().err


def test_provider_round_trips_with_dill_by_reference() -> None:
    blob = serialize_provider(CachePromotionProvider())
    raw = base64.b64decode(blob)
    # Pickled by reference: the engine's provider process imports this module; no code,
    # config, client or lock is captured.
    assert b"components.promotion.provider" in raw and len(raw) < 200
    assert isinstance(dill.loads(raw), CachePromotionProvider)


def test_state_written_before_the_package_still_finds_its_provider() -> None:
    # Serialised by the provider at components/promotion_provider.py: the engine
    # deserialises this very reference for read and delete of a resource in such a state.
    old = "gASVPwAAAAAAAACMHWNvbXBvbmVudHMucHJvbW90aW9uX3Byb3ZpZGVylIwWQ2FjaGVQcm9tb3Rpb25Qcm92aWRlcpSTlCmBlC4="
    assert b"components.promotion_provider" in base64.b64decode(old)
    assert isinstance(dill.loads(base64.b64decode(old)), CachePromotionProvider)


def test_provider_runs_in_a_fresh_process() -> None:
    blob = serialize_provider(CachePromotionProvider())
    script = (
        "import base64, json, sys, dill\n"
        "provider = dill.loads(base64.b64decode(sys.argv[1]))\n"
        "olds, news = json.loads(sys.argv[2]), json.loads(sys.argv[3])\n"
        "result = provider.diff('arc-runners/gcc12', olds, news)\n"
        "print(json.dumps({'changes': result.changes, 'replaces': result.replaces}))\n"
    )
    news = {**PROPS, "promote": "def"}
    done = subprocess.run(
        [sys.executable, "-c", script, blob, json.dumps(OLDS), json.dumps(news)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"changes": True, "replaces": []}
    assert "CachePromotion gcc12: promote gcc12: gen 3 → gen 4 from gcc12-work-2" in done.stderr


def test_importing_the_provider_has_no_side_effects() -> None:
    script = (
        "import threading\n"
        "from lightkube.core.resource_registry import resource_registry\n"
        "import components.promotion.resource, components.promotion.provider\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "assert resource_registry.get('snapshot.storage.k8s.io/v1', 'VolumeSnapshot') is None\n"
        "assert resource_registry.get('zfs.openebs.io/v1', 'ZFSVolume') is None\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_no_change_when_tokens_and_settings_are_the_same(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result, err = diff(dict(PROPS), capsys)
    assert result.changes is False and result.replaces == []
    assert err == ""


def test_a_new_token_is_a_promotion_said_in_words(capsys: pytest.CaptureFixture[str]) -> None:
    result, err = diff({**PROPS, "promote": "def"}, capsys)
    assert result.changes is True and result.replaces == []
    assert "promote gcc12: gen 3 → gen 4 from gcc12-work-2" in err
    assert "could not read the cluster" in err  # and says where its numbers come from


def test_removing_the_token_asks_for_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    news = {k: v for k, v in PROPS.items() if k != "promote"}
    assert diff(news, capsys)[0].changes is False


def test_a_reset_token_and_a_promotion_together(capsys: pytest.CaptureFixture[str]) -> None:
    result, err = diff({**PROPS, "promote": "def", "reset_builder": "r1"}, capsys)
    assert result.changes is True
    assert "promote gcc12: gen 3 → gen 4 from gcc12-work-2" in err
    assert "reset gcc12 builder: gcc12-work-2 → gcc12-work-3 from gcc12-gen-4" in err
    assert "(gcc12-work-2 is kept 7d for troubleshooting)" in err


def test_settings_change_is_an_update_and_identity_a_replacement(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result, err = diff({**PROPS, "grace_seconds": 1800}, capsys)
    assert result.changes is True and result.replaces == []
    assert "settings change: grace_seconds" in err
    result, _ = diff({**PROPS, "namespace": "other"}, capsys)
    assert result.replaces == ["namespace"] and result.changes is True


def test_unknown_inputs_in_preview_are_reported_not_guessed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result, err = diff({**PROPS, "promote": UNKNOWN}, capsys)
    assert result.changes is True
    assert "inputs are not known yet" in err


def test_check_rejects_durations_no_run_could_use() -> None:
    result = CachePromotionProvider().check({}, {**PROPS, "lease_seconds": 0})
    assert [(f.property, f.reason) for f in result.failures] == [
        ("lease_seconds", "must be a positive number of seconds: 0")
    ]
    assert CachePromotionProvider().check({}, dict(PROPS)).failures == []


def test_inputs_default_to_the_stack_owned_names_and_a_wait_for_one_promotion() -> None:
    bare = {k: v for k, v in PROPS.items() if k not in ("root_claim", "builder_volume")}
    inputs = PromotionInputs.from_props(bare)
    assert (inputs.root_claim, inputs.builder_volume) == ("gcc12-gen-1", "gcc12-work-1")
    assert inputs.lease_wait_seconds == 300 + 2 * 300
    assert inputs.where == "arc-runners/gcc12"


def test_outputs_keep_the_names_the_program_consumes() -> None:
    assert {"parent_claim", "generation", "builder_claim", "promoted_at", "token"} <= set(OUTPUTS)


def test_check_leaves_claims_unknown_when_the_cluster_cannot_be_read() -> None:
    stale = {**PROPS, "parent_claim": "gcc12-gen-9", "generation": 9}
    inputs = CachePromotionProvider().check({}, stale).inputs
    assert "parent_claim" not in inputs and "generation" not in inputs
    assert inputs["promote"] == "abc"
