from __future__ import annotations

import sys
from pathlib import Path

from facturation_service.app import load
from facturation_service.settings import database_url
from shared import run_service

if __name__ == "__main__":
    sys.exit(
        run_service(
            service="facturation",
            app_factory="facturation_service.app:create_app",
            default_port=8002,
            migrations_dir=Path(__file__).parent / "migrations",
            database_url=database_url,
            check_settings=load,
        )
    )
