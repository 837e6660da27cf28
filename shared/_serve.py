"""``python -m <service> [serve|migrate|...]``: the same entry point for dev, CI and containers."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import uvicorn

from shared._app import FREEZE_AFTER_STARTUP
from shared._coalesce import CoalescingHttpToolsProtocol
from shared._exceptions import SettingsError
from shared._logging import configure_logging
from shared._migrations import upgrade_database

__all__ = ["run_service"]


def run_service(
    *,
    service: str,
    app_factory: str,
    default_port: int,
    migrations_dir: Path | None = None,
    database_url: Callable[[], str] | None = None,
    check_settings: Callable[[], object] | None = None,
    commands: Mapping[str, Callable[[], int]] | None = None,
    argv: Sequence[str] | None = None,
    protocol: type[asyncio.Protocol] = CoalescingHttpToolsProtocol,
) -> int:
    """Serve the app (default) or apply its migrations; a settings error is one line, exit 2.

    Args:
        app_factory: ``module:function`` returning the Litestar app; settings are read there.
        database_url: reads the service's database URL from its settings, for ``migrate``.
        check_settings: reads the settings once before uvicorn starts, so a bad one stops
            start-up in one line instead of a traceback per worker.
        commands: the service's other commands by name (e.g. facturation's ``worker``), each
            run after logging is configured; its return value is the exit status.
        protocol: the HTTP/1.1 protocol uvicorn runs (a subclass of the coalescing one;
            ``LaneProtocol`` runs what the app's lane takes without uvicorn's ASGI cycle: the
            gateway's proxied requests, facturation's webhook deliveries).
    """
    parser = argparse.ArgumentParser(prog=f"python -m {service}")
    extra = dict(commands or {})
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate", *extra])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", default_port)))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "1")))
    args = parser.parse_args(argv)
    configure_logging(service, os.environ.get("LOG_LEVEL", "INFO"))
    try:
        if args.command == "migrate":
            if migrations_dir is None or database_url is None:
                print(f"{service}: has no database to migrate", file=sys.stderr)
                return 2
            upgrade_database(migrations_dir, database_url())
            return 0
        if args.command in extra:
            return extra[args.command]()
        if check_settings is not None:
            check_settings()
    except SettingsError as exc:
        print(f"{service}: {exc}", file=sys.stderr)
        return 2
    # Behind a load balancer or an ingress controller, FORWARDED_ALLOW_IPS names the proxies whose
    # X-Forwarded-For is believed for the client address; unset, the socket peer is the client.
    forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "")
    os.environ[FREEZE_AFTER_STARTUP] = "1"
    uvicorn.run(
        app_factory,
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        http=protocol,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=bool(forwarded_allow_ips),
        forwarded_allow_ips=forwarded_allow_ips or None,
        timeout_graceful_shutdown=10,
    )
    return 0
