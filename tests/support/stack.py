"""The running system for end-to-end tests and benchmarks: fresh migrated databases, then auth,
facturation (or the echo upstream standing in for it) and the gateway as real processes on free
loopback ports.

    async with start_stack(tmp_path) as stack:            # facturation = the echo upstream
        httpx.get(f"{stack.url}/api/v1/products")
    async with start_stack(tmp_path, facturation_url="start", facturation_env={...}):
        ...                                                 # the real facturation_service
    async with start_stack(tmp_path, facturation_url="http://127.0.0.1:9"):
        ...                                                 # an upstream that is down

Processes start in order (auth, facturation, gateway) and stop in reverse; their logs stay in
``tmp_path`` and are printed into the error when one fails to start.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.support.databases import fresh_database
from tests.support.processes import ServiceProcess

__all__ = [
    "JWT_AUDIENCE",
    "JWT_ISSUER",
    "Stack",
    "another_gateway",
    "signing_key_pem",
    "start_stack",
]

JWT_ISSUER = "facturation-auth-e2e"
JWT_AUDIENCE = "facturation-api-e2e"
ECHO_MODULE = "tests.support.echo_upstream"


def signing_key_pem() -> str:
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


@dataclass
class Stack:
    gateway: ServiceProcess
    auth: ServiceProcess
    facturation_url: str
    internal_token: str
    jwt_private_key: str
    facturation: ServiceProcess | None = None
    """The process behind ``facturation_url``: the echo upstream, the real service, or None."""
    processes: list[ServiceProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.gateway.url

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


@asynccontextmanager
async def another_gateway(
    stack: Stack, tmp_path: Path, env: Mapping[str, str], *, args: tuple[str, ...] = ()
) -> AsyncIterator[Stack]:
    """One more gateway process in front of ``stack``'s services, with other settings (starting
    a process is much cheaper than a whole stack); yields the stack seen through it."""
    gateway = ServiceProcess("gateway", {**stack.gateway.env, **env}, tmp_path, args=args)
    try:
        await asyncio.to_thread(gateway.start)
        yield replace(
            stack,
            gateway=gateway,
            facturation_url=env.get("FACTURATION_URL", stack.facturation_url),
            processes=[gateway],
        )
    finally:
        await asyncio.to_thread(gateway.stop)


async def _start(process: ServiceProcess, stack: list[ServiceProcess]) -> ServiceProcess:
    stack.append(process)
    await asyncio.to_thread(process.start)
    return process


@asynccontextmanager
async def start_stack(
    tmp_path: Path,
    *,
    facturation_url: str | None = None,
    extra_env: Mapping[str, str] | None = None,
    auth_env: Mapping[str, str] | None = None,
    facturation_env: Mapping[str, str] | None = None,
    facturation_args: tuple[str, ...] = (),
    gateway_env: Mapping[str, str] | None = None,
    gateway_args: tuple[str, ...] = (),
) -> AsyncIterator[Stack]:
    """Start the system; ``facturation_url`` is None for the echo upstream, ``"start"`` for the
    real facturation_service, or any URL to use as is. ``extra_env`` goes to every process.

    Ports are chosen up front, so migrations run side by side and then every process starts at
    once (none needs another to pass its ``/healthz``).
    """
    internal_token = secrets.token_urlsafe(24)
    private_key = signing_key_pem()
    common = {"INTERNAL_TOKEN": internal_token, "LOG_LEVEL": "WARNING", **(extra_env or {})}
    processes: list[ServiceProcess] = []
    async with AsyncExitStack() as exits:
        try:
            auth_database = await exits.enter_async_context(fresh_database("auth", tmp_path))
            auth = ServiceProcess(
                "auth_service",
                {
                    **common,
                    "AUTH_DATABASE_URL": auth_database,
                    "JWT_PRIVATE_KEY": private_key,
                    "JWT_ISSUER": JWT_ISSUER,
                    "JWT_AUDIENCE": JWT_AUDIENCE,
                    **(auth_env or {}),
                },
                tmp_path,
            )
            migrations = [auth.migrate()]
            facturation: ServiceProcess | None = None
            if facturation_url is None:
                facturation = ServiceProcess(ECHO_MODULE, common, tmp_path)
            elif facturation_url == "start":
                database = await exits.enter_async_context(fresh_database("facturation", tmp_path))
                facturation = ServiceProcess(
                    "facturation_service",
                    {
                        **common,
                        "FACTURATION_DATABASE_URL": database,
                        "AUTH_URL": auth.url,
                        **(facturation_env or {}),
                    },
                    tmp_path,
                    args=facturation_args,
                )
                migrations.append(facturation.migrate())
            if facturation is not None:
                facturation_url = facturation.url
            assert facturation_url is not None
            await asyncio.gather(*migrations)

            gateway = ServiceProcess(
                "gateway",
                {
                    **common,
                    "AUTH_URL": auth.url,
                    "FACTURATION_URL": facturation_url,
                    **(gateway_env or {}),
                },
                tmp_path,
                args=gateway_args,
            )
            services = [auth, *([facturation] if facturation else []), gateway]
            await asyncio.gather(*(_start(process, processes) for process in services))
            yield Stack(
                gateway=gateway,
                auth=auth,
                facturation_url=facturation_url,
                internal_token=internal_token,
                jwt_private_key=private_key,
                facturation=facturation,
                processes=processes,
            )
        finally:
            # Before the databases are dropped: the exit stack unwinds after this.
            for process in reversed(processes):
                await asyncio.to_thread(process.stop)
