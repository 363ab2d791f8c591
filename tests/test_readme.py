"""The README's generated parts agree with the code, and its commands exist."""

from __future__ import annotations

import re
from pathlib import Path

from scripts.config_reference import BEGIN, END, README, reference

ROOT = Path(__file__).resolve().parent.parent


def test_config_reference_matches_models() -> None:
    text = README.read_text(encoding="utf-8")
    block = text.partition(BEGIN)[2].partition(END)[0].strip()
    assert block == reference(), "run: python scripts/config_reference.py --write"


def test_every_make_target_the_readme_uses_exists() -> None:
    targets = set(re.findall(r"^([a-z0-9-]+):", (ROOT / "Makefile").read_text(), re.M))
    used = set(re.findall(r"\bmake ([a-z0-9-]+)", README.read_text(encoding="utf-8")))
    assert used and used <= targets


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in README.read_text(encoding="utf-8")
    assert "make test" in (ROOT / ".ci" / "run").read_text()
