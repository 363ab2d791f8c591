"""Patch the pre-split Python language host so today's engine can run policy packs with it.

pulumi-language-python from sdk/v3 v3.68.0 runs a plugin as ``python <req.Program>``. The v3.259
engine leaves ``Program`` empty and names the policy pack's directory only in
``RunPluginRequest.info.program_directory`` (fields 5 and 2), a message this host's protocol
version does not know, so protobuf keeps it as unknown bytes. The patch reads it from there;
``python <dir>`` then runs the pack's ``__main__.py``. Exits non-zero when the expected source
is not found, so a moved upstream line fails the build instead of shipping an unpatched host.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["patch"]

RUN_PLUGIN = "\targs := []string{req.Program}\n"
RUN_PLUGIN_PATCHED = (
    "\tprogram := req.Program\n"
    '\tif program == "" {\n'
    "\t\tprogram = programDirectoryFromInfo(req.ProtoReflect().GetUnknown())\n"
    "\t}\n"
    "\targs := []string{program}\n"
)
IMPORT = "import (\n"
IMPORT_PATCHED = 'import (\n\t"google.golang.org/protobuf/encoding/protowire"\n'
HELPER = """
// programDirectoryFromInfo reads RunPluginRequest.info.program_directory (fields 5 and 2), which
// this host's protocol version does not know and keeps as unknown fields. Patched in by
// arc-zfs-cache's scripts/toolchain/patch_langhost.py.
func programDirectoryFromInfo(b []byte) string {
\tfield := func(b []byte, want protowire.Number) ([]byte, bool) {
\t\tfor len(b) > 0 {
\t\t\tnum, typ, n := protowire.ConsumeTag(b)
\t\t\tif n < 0 {
\t\t\t\treturn nil, false
\t\t\t}
\t\t\tb = b[n:]
\t\t\tif num == want && typ == protowire.BytesType {
\t\t\t\tv, m := protowire.ConsumeBytes(b)
\t\t\t\treturn v, m >= 0
\t\t\t}
\t\t\tm := protowire.ConsumeFieldValue(num, typ, b)
\t\t\tif m < 0 {
\t\t\t\treturn nil, false
\t\t\t}
\t\t\tb = b[m:]
\t\t}
\t\treturn nil, false
\t}
\tinfo, ok := field(b, 5)
\tif !ok {
\t\treturn ""
\t}
\tdir, ok := field(info, 2)
\tif !ok {
\t\treturn ""
\t}
\treturn string(dir)
}
"""


def _replace_once(text: str, old: str, new: str, source: Path) -> str:
    if text.count(old) != 1:
        raise SystemExit(f"patch_langhost: expected one `{old.strip()}` in {source}")
    return text.replace(old, new)


def patch(source: Path) -> None:
    """Apply the RunPlugin fallback to ``source`` (the host's main.go)."""
    text = source.read_text(encoding="utf-8")
    text = _replace_once(text, RUN_PLUGIN, RUN_PLUGIN_PATCHED, source)
    text = _replace_once(text, IMPORT, IMPORT_PATCHED, source)
    source.write_text(text + HELPER, encoding="utf-8")


if __name__ == "__main__":
    patch(Path(sys.argv[1]))
