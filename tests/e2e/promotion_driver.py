"""Run one CachePromotion provider method in a fresh process, as the engine's provider does.

    python -m tests.e2e.promotion_driver REQUEST.json [--crash-after STEP]

``REQUEST.json`` holds ``provider`` (the provider serialised exactly as Pulumi serialises it:
dill, base64), ``method`` (create, update, diff, read, delete) and its arguments (``props``,
or ``id``/``olds``/``news``). The driver deserialises the provider with dill (as
``pulumi.dynamic.__main__`` does), calls the method and prints ``{"ok": ..., "outs": ...}`` as
JSON on stdout; a provider error prints ``{"error": <type>, "message": ...}`` and exits 3.

``--crash-after STEP`` replaces :func:`components.promotion_provider.after_step` so that the
process kills itself with SIGKILL right after that protocol step: no cleanup, no ``finally``,
no lease release, exactly like a crashed or OOM-killed provider process.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import dill

from components import promotion_provider


def _crash_after(step: str) -> Any:
    def hook(reached: str) -> None:
        if reached == step:
            sys.stdout.flush()
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def main(argv: list[str] | None = None) -> int:
    """Entry point (see the module docstring)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("request", type=Path)
    parser.add_argument("--crash-after", default=None)
    args = parser.parse_args(argv)
    request = json.loads(args.request.read_text())
    provider = dill.loads(base64.b64decode(request["provider"]))
    if args.crash_after:
        promotion_provider.after_step = _crash_after(args.crash_after)
    method = request["method"]
    try:
        if method == "create":
            result = provider.create(request["props"])
            outs: Any = {"id": result.id, "outs": result.outs}
        elif method == "update":
            outs = {"outs": provider.update(request["id"], request["olds"], request["news"]).outs}
        elif method == "diff":
            diff = provider.diff(request["id"], request["olds"], request["news"])
            outs = {"changes": diff.changes, "replaces": diff.replaces}
        elif method == "read":
            read = provider.read(request["id"], request["props"])
            outs = {"id": read.id, "outs": read.outs}
        elif method == "delete":
            provider.delete(request["id"], request["props"])
            outs = {}
        else:
            raise SystemExit(f"unknown method {method}")
    except Exception as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
        return 3
    print(json.dumps({"ok": True, **outs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
