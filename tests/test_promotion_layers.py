"""Unit tier: promotion's pure modules load without Pulumi or lightkube (at run time too).

``make lint`` checks the static imports (.importlinter); this checks what importing really
loads, including the package's ``__init__``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PURE = ("model", "plan", "gc", "manifests", "port", "steps")


def test_pure_modules_import_neither_pulumi_nor_lightkube() -> None:
    script = (
        "import sys\n"
        + "".join(f"import components.promotion.{name}\n" for name in PURE)
        + "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi', 'lightkube'))\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_the_resource_is_still_importable_from_the_package() -> None:
    from components.promotion import CachePromotion, CachePromotionArgs  # noqa: PLC0415
    from components.promotion.resource import CachePromotion as Declared  # noqa: PLC0415

    assert CachePromotion is Declared and CachePromotionArgs.__module__.endswith(".resource")
