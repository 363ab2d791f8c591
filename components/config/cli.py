"""The offline config check, ``python -m components.config Pulumi.<stack>.yaml ...``."""

from __future__ import annotations

import sys
from pathlib import Path

from components.config.errors import ConfigError
from components.config.files import load_stack_file
from components.config.stack import StackConfig
from components.config.translate import validate_config

__all__ = ["main", "summary"]


def main(argv: list[str] | None = None) -> int:
    """Check stack files offline: print every problem and exit 1, or a summary and exit 0."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m components.config Pulumi.<stack>.yaml ...", file=sys.stderr)
        return 2
    status = 0
    for arg in args:
        path = Path(arg)
        try:
            config = validate_config(load_stack_file(path))
        except ConfigError as exc:
            status = 1
            print(f"{path}: {len(exc.problems)} problem(s)")
            for problem in exc.problems:
                print(f"  {problem}")
            continue
        print(f"{path}: ok — {summary(config)}")
    return status


def summary(config: StackConfig) -> str:
    """One line describing a valid stack."""
    runners = sum(s.max_runners for s in config.scale_sets.values())
    nodes = sorted({cache.node for cache in config.caches.values()})
    return (
        f"{len(config.caches)} cache(s) ({', '.join(config.caches)}), "
        f"{len(config.scale_sets)} scale set(s) up to {runners} runners, "
        f"node(s) {', '.join(nodes)}, github {config.github.url}"
    )
