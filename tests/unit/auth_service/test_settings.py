from __future__ import annotations

import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

import auth_service
from auth_service import AuthSettings, generate_private_key_pem, load
from auth_service.settings import DEFAULT_DATABASE_URL, database_url
from shared import SettingsError
from tests.support.processes import ROOT, run_module


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, private_key_pem: str) -> pytest.MonkeyPatch:
    for name in ("AUTH_DATABASE_URL", "JWT_ISSUER", "JWT_AUDIENCE", "JWT_TTL_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INTERNAL_TOKEN", "secret")
    monkeypatch.setenv("JWT_PRIVATE_KEY", private_key_pem)
    monkeypatch.delenv("JWT_PREVIOUS_PUBLIC_KEYS", raising=False)
    return monkeypatch


def test_the_public_surface() -> None:
    assert sorted(auth_service.__all__) == [
        "AuthSettings",
        "create_app",
        "generate_private_key_pem",
        "load",
    ]


def test_defaults(environment: pytest.MonkeyPatch) -> None:
    settings = load()
    assert settings.auth_database_url == DEFAULT_DATABASE_URL
    assert (settings.jwt_issuer, settings.jwt_audience) == ("facturation-auth", "facturation-api")
    assert settings.jwt_ttl_seconds == 900
    assert settings.login_max_failures_per_account == 5
    assert settings.login_max_attempts_per_address == 20


def test_environment_names(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("AUTH_DATABASE_URL", "postgresql://db/auth")
    environment.setenv("JWT_TTL_SECONDS", "60")
    environment.setenv("JWT_PREVIOUS_PUBLIC_KEYS", f"{generate_private_key_pem()},")
    settings = load()
    assert settings.auth_database_url == "postgresql://db/auth"
    assert settings.jwt_ttl_seconds == 60
    assert len(settings.jwt_previous_public_keys) == 1


@pytest.mark.parametrize("name", ["INTERNAL_TOKEN", "JWT_PRIVATE_KEY"])
def test_a_missing_secret_is_one_line_naming_it(environment: pytest.MonkeyPatch, name: str) -> None:
    environment.delenv(name)
    with pytest.raises(SettingsError, match=f"^missing required setting {name}$"):
        load()


def _ec_key_pem() -> str:
    key = generate_private_key(SECP256R1())
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


@pytest.mark.parametrize("value", ["not a pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n", "EC"])
def test_a_malformed_private_key_is_one_line_naming_it(
    environment: pytest.MonkeyPatch, value: str
) -> None:
    environment.setenv("JWT_PRIVATE_KEY", _ec_key_pem() if value == "EC" else value)
    with pytest.raises(SettingsError, match=r"^malformed setting JWT_PRIVATE_KEY: ") as error:
        load()
    assert "\n" not in str(error.value)
    assert "AAAA" not in str(error.value)


def test_a_malformed_previous_key_is_refused(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("JWT_PREVIOUS_PUBLIC_KEYS", "garbage")
    with pytest.raises(SettingsError, match=r"^malformed setting JWT_PREVIOUS_PUBLIC_KEYS: "):
        load()


def test_a_non_positive_ttl_is_refused(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("JWT_TTL_SECONDS", "0")
    with pytest.raises(SettingsError, match="JWT_TTL_SECONDS"):
        load()


def test_a_private_key_with_escaped_newlines_is_accepted(
    environment: pytest.MonkeyPatch, private_key_pem: str
) -> None:
    environment.setenv("JWT_PRIVATE_KEY", private_key_pem.replace("\n", "\\n"))
    assert isinstance(load(), AuthSettings)


def test_migrate_needs_only_the_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JWT_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("INTERNAL_TOKEN", raising=False)
    monkeypatch.setenv("AUTH_DATABASE_URL", "postgresql://db/auth")
    assert database_url() == "postgresql://db/auth"


def test_serve_without_a_key_stops_with_one_line() -> None:
    env = {"PATH": "/usr/bin:/bin", "INTERNAL_TOKEN": "secret"}
    result = run_module("auth_service", "serve", env=env)
    assert result.returncode == 2
    assert result.stderr == "auth_service: missing required setting JWT_PRIVATE_KEY\n"


def test_the_key_helper_prints_a_usable_private_key() -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", "-m", "auth_service.keys"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.startswith("-----BEGIN PRIVATE KEY-----\n")
    assert result.stderr == ""
    settings = AuthSettings(internal_token="x", jwt_private_key=result.stdout)
    assert settings.jwt_private_key == result.stdout
    from auth_service.signing_keys import KeyRing

    assert KeyRing.from_pems(result.stdout).signing_kid
