"""What a service loads to serve: libraries only one command or one rare request needs are
imported by it, not by every process at start-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_serving_loads_neither_alembic_nor_the_pdf_library() -> None:
    """Alembic (about 10 MB) runs in ``migrate`` only; fpdf2 (about 30 MB) with the first
    invoice document."""
    probe = (
        "import sys\n"
        "import auth_service.app, gateway.app, facturation_service.app\n"
        "import facturation_service.worker_process\n"
        "print(sorted(name for name in ('alembic', 'fpdf') if name in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )

    assert result.stdout.strip() == "[]"
