"""``python -m stripe_sandbox [serve]`` on port 12111 by default. One worker only: state is in
memory."""

from __future__ import annotations

import sys

from shared import run_service
from stripe_sandbox.settings import read_settings

if __name__ == "__main__":
    sys.exit(
        run_service(
            service="stripe_sandbox",
            app_factory="stripe_sandbox.app:create_app",
            default_port=12111,
            check_settings=read_settings,
        )
    )
