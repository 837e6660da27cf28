"""The project wheel as pip builds it (with build isolation, like the image's build stage)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def build_wheel(source: Path) -> Path:
    """``pip wheel --no-deps`` of the project in ``source``; the wheel's path."""
    out = source / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", out, "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    (wheel,) = out.glob("facturation-*.whl")
    return wheel
