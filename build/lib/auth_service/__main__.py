"""``python -m auth_service [serve|migrate] [--host] [--port] [--workers]``."""

from __future__ import annotations

import sys
from pathlib import Path

from auth_service.app import load
from auth_service.settings import database_url
from shared import run_service

sys.exit(
    run_service(
        service="auth_service",
        app_factory="auth_service.app:create_app",
        default_port=8001,
        migrations_dir=Path(__file__).resolve().parent / "migrations",
        database_url=database_url,
        check_settings=load,
    )
)
