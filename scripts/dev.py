"""`make dev`: the whole stack on one machine, offline, on SQLite.

Generates the dev secrets once into .dev/, migrates each service, starts the Stripe sandbox
(unless real Stripe keys are in the environment), auth (and registers the demo user with it),
facturation and the gateway, prints the URLs, and stops everything on Ctrl-C.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared import INTERNAL_TOKEN_HEADER

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / ".dev"
SECRETS = DEV / "secrets.env"
DEMO_USER = {"email": "demo@example.com", "password": "demo-password-123", "name": "Demo User"}
GATEWAY = "http://localhost:8000"

# (module, port, needs migrations) in start order; missing packages are skipped.
SERVICES = [
    ("stripe_sandbox", 12111, False),
    ("auth_service", 8001, True),
    ("facturation_service", 8002, True),
    ("gateway", 8000, False),
]


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip('"').replace("\\n", "\n")
    return values


def ensure_secrets() -> dict[str, str]:
    """Dev-only secrets, made once so tokens survive a restart of `make dev`."""
    DEV.mkdir(exist_ok=True)
    if not SECRETS.exists():
        pem = (
            Ed25519PrivateKey.generate()
            .private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            .decode()
        )
        lines = {
            "INTERNAL_TOKEN": secrets.token_urlsafe(32),
            "JWT_PRIVATE_KEY": pem.replace("\n", "\\n"),
            "STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_hex(24),
            "SANDBOX_SECRET_KEY": "sk_test_sandbox_" + secrets.token_hex(12),
        }
        SECRETS.write_text("".join(f"{key}={value}\n" for key, value in lines.items()))
        SECRETS.chmod(0o600)
    return read_env_file(SECRETS)


def build_environment() -> tuple[dict[str, str], bool]:
    generated = ensure_secrets()
    overrides = {**read_env_file(ROOT / ".env"), **os.environ}
    real_stripe = overrides.get("STRIPE_SECRET_KEY", "").startswith(("sk_test_", "sk_live_"))
    env = {
        "AUTH_DATABASE_URL": f"sqlite:///{DEV / 'auth.db'}",
        "FACTURATION_DATABASE_URL": f"sqlite:///{DEV / 'facturation.db'}",
        "AUTH_URL": "http://127.0.0.1:8001",
        "FACTURATION_URL": "http://127.0.0.1:8002",
        "CORS_ORIGINS": "http://localhost:8000,http://127.0.0.1:8000",
        "CHECKOUT_RETURN_ORIGINS": "http://localhost:8000,http://127.0.0.1:8000",
        "GATEWAY_SPA_DIR": str(ROOT / "spa"),
        "INTERNAL_TOKEN": generated["INTERNAL_TOKEN"],
        "JWT_PRIVATE_KEY": generated["JWT_PRIVATE_KEY"],
        "STRIPE_WEBHOOK_SECRET": generated["STRIPE_WEBHOOK_SECRET"],
    }
    if not real_stripe:
        env.update(
            STRIPE_SECRET_KEY=generated["SANDBOX_SECRET_KEY"],
            STRIPE_PUBLISHABLE_KEY="pk_test_sandbox",
            STRIPE_API_BASE="http://127.0.0.1:12111",
            STRIPE_JS_URL="http://localhost:12111/v3/",
            SANDBOX_WEBHOOK_URL="http://127.0.0.1:8000/webhooks/stripe",
        )
    env.update(overrides)
    return env, real_stripe


def wait_healthy(name: str, url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited during start-up (see its log above)")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{name} did not become healthy at {url}")


def stop_all(processes: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    for _, process in reversed(processes):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for _, process in reversed(processes):
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def register_demo_user(env: dict[str, str]) -> None:
    """Straight at auth, with the internal credential, as soon as auth is up: by the time the
    gateway answers the app's first page, the demo user can log in (registered through the
    gateway once everything was up, a quick first login got a 401)."""
    response = httpx.post(
        f"{env['AUTH_URL']}/auth/register",
        json=DEMO_USER,
        headers={INTERNAL_TOKEN_HEADER: env["INTERNAL_TOKEN"]},
        timeout=10,
    )
    if response.status_code not in (201, 409):
        print(f"demo user not created: {response.status_code} {response.text}", file=sys.stderr)


def available_services(real_stripe: bool) -> list[tuple[str, int, bool]]:
    """The services this checkout holds, each run with the checkout as working directory (the
    sandbox is no installed package: it exists only in a checkout); no sandbox with real Stripe."""
    return [
        service
        for service in SERVICES
        if (ROOT / service[0] / "__main__.py").is_file()
        and not (real_stripe and service[0] == "stripe_sandbox")
    ]


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    env, real_stripe = build_environment()
    env["PYTHONUNBUFFERED"] = "1"
    available = available_services(real_stripe)
    for module, _, migrates in available:
        if migrates:
            subprocess.run([sys.executable, "-m", module, "migrate"], env=env, cwd=ROOT, check=True)

    processes: list[tuple[str, subprocess.Popen[bytes]]] = []
    # `kill` stops the stack as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        for module, port, _ in available:
            process = subprocess.Popen(
                [sys.executable, "-m", module, "serve", "--port", str(port)], env=env, cwd=ROOT
            )
            processes.append((module, process))
            wait_healthy(module, f"http://127.0.0.1:{port}", process)
            if module == "auth_service":
                register_demo_user(env)
        print(
            "\n"
            f"  app (SPA)        {GATEWAY}/\n"
            f"  API              {GATEWAY}/api/v1/...   (gateway; health {GATEWAY}/healthz)\n"
            "  auth (private)   http://127.0.0.1:8001\n"
            "  facturation      http://127.0.0.1:8002 (private)\n"
            + (
                "  Stripe           real Stripe (keys from the environment)\n"
                if real_stripe
                else "  Stripe sandbox   http://localhost:12111  (card 4242 4242 4242 4242 pays,"
                " 4000 0000 0000 0002 is declined)\n"
            )
            + f"  demo user        {DEMO_USER['email']} / {DEMO_USER['password']}\n"
            f"  webhook secret   in {SECRETS.relative_to(ROOT)} (for Postman)\n"
            "\n  Ctrl-C stops everything.\n",
            flush=True,
        )
        while True:
            for module, process in processes:
                if process.poll() is not None:
                    print(f"{module} stopped (exit {process.returncode}); stopping all")
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        # Stopping once is enough: a second Ctrl-C, or the SIGTERM that make passes on to its
        # child after the one sent to the whole group, must not cut the stop short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("\nstopping...", flush=True)
        return 0
    finally:
        stop_all(processes)


if __name__ == "__main__":
    sys.exit(main())
