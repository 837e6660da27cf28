"""The whole system offline, as `make dev` runs it: the Stripe sandbox, auth, the real
facturation service and the gateway (optionally serving a SPA folder), each a real process on a
free loopback port, the sandbox delivering its signed webhooks to the gateway.

    async with start_offline_stack(tmp_path, spa_dir=...) as offline:
        offline.url, offline.sandbox.url, offline.webhook_secret
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import ServiceProcess, free_port
from tests.support.stack import Stack, start_stack

__all__ = ["PUBLISHABLE_KEY", "OfflineStack", "start_offline_stack"]

PUBLISHABLE_KEY = "pk_test_offline_e2e"


@dataclass
class OfflineStack:
    stack: Stack
    gateway: ServiceProcess
    """The gateway in front, on the port facturation allows as checkout return origin."""
    sandbox: ServiceProcess
    webhook_secret: str

    @property
    def url(self) -> str:
        return self.gateway.url

    @property
    def processes(self) -> list[ServiceProcess]:
        return [*self.stack.processes, self.gateway, self.sandbox]


@asynccontextmanager
async def start_offline_stack(
    tmp_path: Path, *, spa_dir: Path | None = None
) -> AsyncIterator[OfflineStack]:
    webhook_secret = "whsec_" + secrets.token_hex(24)
    # facturation must know the gateway's origin (the checkout return_url allowlist) before it
    # starts, so this gateway's port is chosen first and the process started after the stack.
    gateway_port = free_port()
    gateway_origin = f"http://127.0.0.1:{gateway_port}"
    sandbox = ServiceProcess(
        "stripe_sandbox",
        {
            "STRIPE_WEBHOOK_SECRET": webhook_secret,
            "SANDBOX_WEBHOOK_URL": f"{gateway_origin}/webhooks/stripe",
            "SANDBOX_WEBHOOK_RETRY_BASE_MS": "100",
            "LOG_LEVEL": "WARNING",
        },
        tmp_path,
    )
    await asyncio.to_thread(sandbox.start)
    try:
        async with start_stack(
            tmp_path,
            facturation_url="start",
            # Every request logs in from 127.0.0.1; auth's per-address login limit would trip.
            auth_env={
                "LOGIN_MAX_ATTEMPTS_PER_ADDRESS": "0",
                "REGISTER_MAX_ATTEMPTS_PER_ADDRESS": "0",
            },
            facturation_env={
                "STRIPE_API_BASE": sandbox.url,
                "STRIPE_SECRET_KEY": "sk_test_offline_" + secrets.token_hex(8),
                "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
                "STRIPE_WEBHOOK_SECRET": webhook_secret,
                "CHECKOUT_RETURN_ORIGINS": gateway_origin,
            },
        ) as stack:
            env = dict(stack.gateway.env)
            if spa_dir is not None:
                # The SPA's /config.js names this stack's Stripe.js, as a deployment's does.
                env.update(
                    GATEWAY_SPA_DIR=str(spa_dir),
                    STRIPE_JS_URL=f"{sandbox.url}/v3/",
                    STRIPE_PUBLISHABLE_KEY=PUBLISHABLE_KEY,
                )
            gateway = ServiceProcess("gateway", env, tmp_path, port=gateway_port)
            try:
                await asyncio.to_thread(gateway.start)
                yield OfflineStack(
                    stack=stack, gateway=gateway, sandbox=sandbox, webhook_secret=webhook_secret
                )
            finally:
                await asyncio.to_thread(gateway.stop)
    finally:
        await asyncio.to_thread(sandbox.stop)
