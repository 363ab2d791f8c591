"""Run one CachePromotion provider method in a fresh process, as the engine's provider does.

    python -m tests.e2e.promotion_driver REQUEST.json [--crash-after STEP]

``REQUEST.json`` holds ``provider`` (the provider serialised exactly as Pulumi serialises it:
dill, base64), ``method`` (create, update, diff, read, delete) and its arguments (``props``,
or ``id``/``olds``/``news``). The driver deserialises the provider with dill (as
``pulumi.dynamic.__main__`` does), calls the method and prints ``{"ok": ..., "outs": ...}`` as
JSON on stdout; a provider error prints ``{"error": <type>, "message": ...}`` and exits 3.

``method`` ``parallel`` runs every request of ``calls`` at once in threads, as the engine's
provider process serves several resources at once; it answers ``{"ok": ..., "results": [...]}``.

``--crash-after STEP`` replaces :func:`components.promotion.steps.after_step` so that the
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
import threading
from pathlib import Path
from typing import Any

import dill

from components.promotion import steps


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
        steps.after_step = _crash_after(args.crash_after)
    if request["method"] == "parallel":
        results: list[Any] = [None] * len(request["calls"])

        def run(i: int) -> None:
            results[i] = _call(provider, request["calls"][i])

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(results))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        ok = all("error" not in r for r in results)
        print(json.dumps({"ok": ok, "results": results}))
        return 0 if ok else 3
    answer = _call(provider, request)
    print(json.dumps(answer))
    return 3 if "error" in answer else 0


def _call(provider: Any, request: dict[str, Any]) -> dict[str, Any]:
    method = request["method"]
    try:
        if method == "create":
            result = provider.create(request["props"])
            outs: dict[str, Any] = {"id": result.id, "outs": result.outs}
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
        return {"error": type(exc).__name__, "message": str(exc)}
    return {"ok": True, **outs}


if __name__ == "__main__":
    raise SystemExit(main())
