from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import GatewaySettings, load_gateway_settings
from shared import SettingsError, load_settings


def test_defaults_need_only_the_internal_token() -> None:
    settings = load_settings(GatewaySettings, {"INTERNAL_TOKEN": "t"})
    assert settings.auth_url == "http://127.0.0.1:8001"
    assert settings.facturation_url == "http://127.0.0.1:8002"
    assert settings.gateway_token_cache_seconds == 30.0
    assert settings.gateway_max_body_bytes == 1_048_576
    assert settings.gateway_spa_dir is None


def test_gateway_variables_are_read() -> None:
    settings = load_settings(
        GatewaySettings,
        {
            "INTERNAL_TOKEN": "t",
            "AUTH_URL": "http://auth:8001",
            "CORS_ORIGINS": "https://a.example, https://b.example",
            "GATEWAY_TOKEN_CACHE_SECONDS": "0",
            "GATEWAY_MAX_BODY_BYTES": "1024",
            "GATEWAY_SPA_DIR": "/srv/spa",
        },
    )
    assert settings.auth_url == "http://auth:8001"
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.gateway_token_cache_seconds == 0
    assert settings.gateway_max_body_bytes == 1024
    assert settings.gateway_spa_dir == "/srv/spa"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({}, "INTERNAL_TOKEN"),
        ({"INTERNAL_TOKEN": "t", "AUTH_URL": "auth:8001"}, "AUTH_URL"),
        ({"INTERNAL_TOKEN": "t", "FACTURATION_URL": "http://x/path"}, "FACTURATION_URL"),
        (
            {"INTERNAL_TOKEN": "t", "GATEWAY_TOKEN_CACHE_SECONDS": "-1"},
            "GATEWAY_TOKEN_CACHE_SECONDS",
        ),
        ({"INTERNAL_TOKEN": "t", "GATEWAY_MAX_BODY_BYTES": "0"}, "GATEWAY_MAX_BODY_BYTES"),
        (
            {"INTERNAL_TOKEN": "t", "GATEWAY_AUTH_TIMEOUT_SECONDS": "0"},
            "GATEWAY_AUTH_TIMEOUT_SECONDS",
        ),
    ],
)
def test_bad_setting_is_one_line_naming_it(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(GatewaySettings, environ)


def test_spa_dir_must_be_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERNAL_TOKEN", "t")
    monkeypatch.setenv("GATEWAY_SPA_DIR", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match="GATEWAY_SPA_DIR"):
        load_gateway_settings()
    monkeypatch.setenv("GATEWAY_SPA_DIR", str(tmp_path))
    assert load_gateway_settings().gateway_spa_dir == str(tmp_path)
