"""``python -m facturation_service serve | migrate | worker``: start the service, bring its
database to the newest migration, or apply journaled webhook events in a process of its own
(``worker_process.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

from facturation_service.settings import database_url
from facturation_service.worker_process import main as worker_main
from shared import LaneProtocol, run_service


def load() -> object:
    """The app's start-up reads, imported here only: the ``worker`` command runs without the
    web app's modules (about 30 MB less)."""
    from facturation_service.app import load as load_app

    return load_app()


if __name__ == "__main__":
    sys.exit(
        run_service(
            service="facturation",
            app_factory="facturation_service.app:create_app",
            default_port=8002,
            migrations_dir=Path(__file__).parent / "migrations",
            database_url=database_url,
            check_settings=load,
            commands={"worker": worker_main},
            protocol=LaneProtocol,
        )
    )
