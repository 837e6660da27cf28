from __future__ import annotations

import msgspec
import pytest

from shared import PositiveSeconds, SettingsError, load_settings


class ExampleSettings(msgspec.Struct, frozen=True):
    internal_token: str
    example_database_url: str = "sqlite:///example.db"
    port: int = 8000
    cors_origins: list[str] = []
    cache_seconds: float = 30.0


def test_reads_each_field_from_its_environment_variable() -> None:
    settings = load_settings(
        ExampleSettings,
        {
            "INTERNAL_TOKEN": "t",
            "EXAMPLE_DATABASE_URL": "postgresql://db/x",
            "PORT": "9000",
            "CORS_ORIGINS": "http://a.test, http://b.test",
            "CACHE_SECONDS": "0",
        },
    )
    assert settings == ExampleSettings(
        internal_token="t",
        example_database_url="postgresql://db/x",
        port=9000,
        cors_origins=["http://a.test", "http://b.test"],
        cache_seconds=0.0,
    )


def test_defaults_apply_when_unset() -> None:
    settings = load_settings(ExampleSettings, {"INTERNAL_TOKEN": "t"})
    assert settings.port == 8000
    assert settings.cors_origins == []


def test_missing_required_setting_names_the_variable() -> None:
    with pytest.raises(SettingsError, match=r"^missing required setting INTERNAL_TOKEN$"):
        load_settings(ExampleSettings, {})


def test_empty_required_setting_counts_as_missing() -> None:
    with pytest.raises(SettingsError, match="INTERNAL_TOKEN"):
        load_settings(ExampleSettings, {"INTERNAL_TOKEN": ""})


def test_malformed_setting_names_the_variable_in_one_line() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(ExampleSettings, {"INTERNAL_TOKEN": "t", "PORT": "eighty"})
    message = str(caught.value)
    assert message.startswith("malformed setting PORT:")
    assert "\n" not in message


class RenamedSettings(msgspec.Struct, frozen=True):
    database_url: str = msgspec.field(default="", name="example_database_url")


def test_a_settings_class_that_renames_a_field_is_refused() -> None:
    with pytest.raises(TypeError, match="database_url"):
        load_settings(RenamedSettings, {})


def test_an_out_of_range_value_names_the_variable_in_one_line() -> None:
    class Bounded(msgspec.Struct, frozen=True):
        example_seconds: PositiveSeconds = 1.0

    for raw in ("0", "-1", "100000"):
        with pytest.raises(SettingsError) as caught:
            load_settings(Bounded, {"EXAMPLE_SECONDS": raw})
        assert str(caught.value).startswith("malformed setting EXAMPLE_SECONDS:")
        assert "\n" not in str(caught.value)
