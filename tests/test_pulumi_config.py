"""The engine's config read into StackConfig, through the Python SDK as the engine fills it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pulumi
import pulumi.runtime
import pytest
from pulumi.runtime import config as runtime_config

from components import constants as c
from components.config import ConfigError, SecretValue
from components.pulumi_config import engine_config, load_stack_config, raw_config

NS = c.CONFIG_NAMESPACE


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An empty engine config; what the test sets is undone afterwards."""
    before = dict(runtime_config.CONFIG.get())
    secret_before = [k for k in before if pulumi.runtime.is_config_secret(k)]
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    pulumi.runtime.set_all_config({}, [])
    yield
    pulumi.runtime.set_all_config(before, secret_before)


def test_engine_config_lists_both_sources_as_the_public_api_reads_them(
    engine: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fails when the SDK renames or stops filling the in-process map engine_config reads.
    pulumi.runtime.set_all_config({f"{NS}:a": "1", f"{NS}:b": '"in-process"'}, [f"{NS}:a"])
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({f"{NS}:b": '"env"', f"{NS}:c": "3"}))
    entries = engine_config()
    assert entries == {
        f"{NS}:a": ("1", True),
        f"{NS}:b": ('"in-process"', False),
        f"{NS}:c": ("3", False),
    }
    public = pulumi.Config(NS)
    for key, (text, _) in entries.items():
        assert public.get(key.removeprefix(f"{NS}:")) == text


def test_raw_config_decodes_and_seals_secret_fields(engine: None) -> None:
    github = {"url": "https://github.com/acme", "credentials": {"token": "ghp_unit"}}
    pulumi.runtime.set_all_config(
        {
            f"{NS}:github": json.dumps(github),
            f"{NS}:note": "not json",
            "kubernetes:context": "other-project",
        },
        [f"{NS}:github"],
    )
    raw = raw_config()
    assert set(raw) == {"github", "note"}
    assert raw["note"] == "not json"
    token = raw["github"]["credentials"]["token"]
    assert isinstance(token, SecretValue) and token.value == "ghp_unit"
    assert raw["github"]["url"] == "https://github.com/acme"


def test_load_stack_config_reports_unknown_top_level_keys(engine: None) -> None:
    pulumi.runtime.set_all_config(
        {
            f"{NS}:github": json.dumps(
                {"url": "https://github.com/acme", "credentials": {"token": "ghp_unit"}}
            ),
            f"{NS}:caches": json.dumps(
                {"gcc12": {"node": "node-a", "size": "200Gi", "mountPath": "/CONAN_HOME"}}
            ),
            f"{NS}:scaleSets": json.dumps({"linux": {"caches": ["gcc12"]}}),
            f"{NS}:scaleSet": json.dumps({}),
        },
        [f"{NS}:github"],
    )
    with pytest.raises(ConfigError) as info:
        load_stack_config()
    assert [p.path for p in info.value.problems] == ["scaleSet"]
    assert "not a known key" in info.value.problems[0].message
