"""Small helpers for scripts/toolchain.sh that need to read Go's JSON output.

  gomod.py download-dir   < `go mod download -json M@V`  -> prints Dir, or the
                                                           proxy's error, exit 1
  gomod.py download-time  < `go mod download -json M@V`  -> prints the release
                                                           time (RFC 3339)
  gomod.py relative-replaces < `go mod edit -json`       -> prints the module
                                                           paths replaced by a
                                                           relative directory

Upstream go.mod files in monorepos (pulumi, kubernetes) replace sibling
modules with `../sdk` or `./staging/src/...`; those directories are not part
of the published module zip, so the toolchain script swaps each of them for
the published module at a known version.
"""

from __future__ import annotations

import json
import sys


def _download() -> dict[str, str]:
    text = sys.stdin.read()
    try:
        info: dict[str, str] = json.loads(text)
    except json.JSONDecodeError:
        print(text.strip() or "go mod download printed nothing", file=sys.stderr)
        sys.exit(1)
    if info.get("Error"):
        print(info["Error"], file=sys.stderr)
        sys.exit(1)
    return info


def main(command: str) -> int:
    if command == "download-dir":
        print(_download()["Dir"])
    elif command == "download-time":
        print(_download().get("Time", ""))
    elif command == "relative-replaces":
        mod = json.load(sys.stdin)
        for rep in mod.get("Replace") or []:
            if rep["New"]["Path"].startswith(("./", "../")):
                print(rep["Old"]["Path"])
    else:
        print(f"gomod.py: unknown command {command!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
