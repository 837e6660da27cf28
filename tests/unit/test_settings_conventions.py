"""The settings conventions, checked on every service: one naming rule, a range on every number,
and a bad value that stops start-up in one line naming the variable."""

from __future__ import annotations

import typing

import msgspec
import pytest

from auth_service import AuthSettings, generate_private_key_pem
from facturation_service.settings import FacturationSettings
from gateway import GatewaySettings
from stripe_sandbox import SandboxSettings
from tests.support.processes import run_module

SETTINGS: list[type[msgspec.Struct]] = [
    AuthSettings,
    FacturationSettings,
    GatewaySettings,
    SandboxSettings,
]


def _numeric_fields(cls: type[msgspec.Struct]) -> list[tuple[str, typing.Any]]:
    hints = typing.get_type_hints(cls, include_extras=True)
    numeric = []
    for field in msgspec.structs.fields(cls):
        hint = hints[field.name]
        base = typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint
        if base in (int, float):
            numeric.append((field.name, hint))
    return numeric


@pytest.mark.parametrize("cls", SETTINGS, ids=lambda cls: cls.__name__)
def test_every_field_is_named_after_its_variable(cls: type[msgspec.Struct]) -> None:
    assert [f.encode_name for f in msgspec.structs.fields(cls)] == [
        f.name for f in msgspec.structs.fields(cls)
    ]


@pytest.mark.parametrize("cls", SETTINGS, ids=lambda cls: cls.__name__)
def test_every_numeric_setting_has_a_lower_and_an_upper_bound(cls: type[msgspec.Struct]) -> None:
    numeric = _numeric_fields(cls)
    assert numeric, "every service has numeric settings"
    unbounded = []
    for name, hint in numeric:
        metas = [m for m in typing.get_args(hint)[1:] if isinstance(m, msgspec.Meta)]
        lower = any(m.ge is not None or m.gt is not None for m in metas)
        upper = any(m.le is not None or m.lt is not None for m in metas)
        if not (lower and upper):
            unbounded.append(name)
    assert unbounded == []


@pytest.mark.parametrize(
    ("module", "service", "variable", "value"),
    [
        ("gateway", "gateway", "GATEWAY_MAX_CONNECTIONS", "0"),
        ("auth_service", "auth_service", "LOGIN_RATE_WINDOW_SECONDS", "0"),
        ("facturation_service", "facturation", "FACTURATION_WEBHOOK_CONCURRENCY", "0"),
        ("stripe_sandbox", "stripe_sandbox", "SANDBOX_FAILURE_RATE", "1.5"),
    ],
)
def test_an_out_of_range_setting_stops_start_up_with_one_line_naming_it(
    module: str, service: str, variable: str, value: str
) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "INTERNAL_TOKEN": "secret",
        "JWT_PRIVATE_KEY": generate_private_key_pem(),
        "STRIPE_API_BASE": "http://127.0.0.1:9",
        variable: value,
    }
    result = run_module(module, "serve", env=env)
    assert result.returncode == 2
    assert result.stderr.startswith(f"{service}: malformed setting {variable}: ")
    assert result.stderr.count("\n") == 1


def test_the_worker_command_stops_on_a_bad_setting_with_one_line_naming_it() -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "INTERNAL_TOKEN": "secret",
        "STRIPE_API_BASE": "http://127.0.0.1:9",
        "FACTURATION_WORKER_METRICS_PORT": "70000",
    }
    result = run_module("facturation_service", "worker", env=env)
    assert result.returncode == 2
    assert result.stderr.startswith(
        "facturation: malformed setting FACTURATION_WORKER_METRICS_PORT: "
    )
    assert result.stderr.count("\n") == 1
