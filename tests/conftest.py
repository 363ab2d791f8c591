"""Unit-tier fixtures; the harness they use is tests/harness.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from components.config import SecretValue, load_stack_file, validate_config
from tests.harness import DATA, Deployment, deploy


@pytest.fixture
def minimal_raw() -> dict[str, Any]:
    """Raw config of tests/data/minimal_stack.yaml, its secret decrypted as the engine would."""
    raw = load_stack_file(DATA / "minimal_stack.yaml")
    raw["github"]["credentials"]["token"] = SecretValue("ghp_unit_test_token_value")
    return raw


@pytest.fixture
def deploy_raw() -> Iterator[Callable[[dict[str, Any]], Deployment]]:
    """Validate raw config and deploy it under mocks."""
    yield lambda raw: deploy(validate_config(raw))
