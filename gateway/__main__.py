from __future__ import annotations

import sys

from gateway.app import load
from shared import LaneProtocol, run_service

if __name__ == "__main__":
    sys.exit(
        run_service(
            service="gateway",
            app_factory="gateway.app:create_app",
            default_port=8000,
            check_settings=load,
            protocol=LaneProtocol,
        )
    )
