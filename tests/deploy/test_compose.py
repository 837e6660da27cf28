"""deploy/compose.yaml: valid against the Compose Specification's JSON schema (the copy that
check-jsonschema ships, so no network is needed), with the private topology the design asks for."""

from __future__ import annotations

import copy
import json
import re
import stat
from importlib import resources
from typing import Any

import jsonschema
import pytest

from tests.deploy.manifests import (
    COMPOSE_ENV_EXAMPLE,
    DEPLOY,
    compose,
    env_names,
    option,
    served_module,
)

SERVICE_PORTS = {"gateway": 8000, "auth": 8001, "facturation": 8002}
MIGRATIONS = {"auth-migrate": "auth_service", "facturation-migrate": "facturation_service"}
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")


def _compose_schema() -> dict[str, Any]:
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema: dict[str, Any] = json.loads(vendored.read_text())
    return schema


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = _compose_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    loaded: dict[str, Any] = compose()["services"]
    return loaded


def test_compose_file_matches_the_compose_specification(
    validator: jsonschema.protocols.Validator,
) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose())]
    assert errors == []


def test_the_specification_check_rejects_a_broken_file(
    validator: jsonschema.protocols.Validator,
) -> None:
    broken = copy.deepcopy(compose())
    broken["services"]["auth"]["depends_on"]["auth-migrate"]["condition"] = "service_finished"
    broken["networks"]["internal"]["internal"] = "yes"
    assert len(list(validator.iter_errors(broken))) == 2


def test_only_the_gateway_publishes_a_port(services: dict[str, Any]) -> None:
    published = {name: s["ports"] for name, s in services.items() if "ports" in s}
    assert published == {"gateway": ["8000:8000"]}


def test_private_services_and_database_sit_only_on_the_internal_network(
    services: dict[str, Any],
) -> None:
    networks = compose()["networks"]
    assert networks["internal"] == {"internal": True}
    assert not networks["public"].get("internal", False)
    on = {name: set(service["networks"]) for name, service in services.items()}
    assert on == {
        "postgres": {"internal"},
        "auth-migrate": {"internal"},
        "facturation-migrate": {"internal"},
        "auth": {"internal"},
        # internal networks have no route out; Stripe is on the internet.
        "facturation": {"internal", "egress"},
        "gateway": {"public", "internal"},
    }
    assert [name for name, nets in on.items() if "egress" in nets] == ["facturation"]


@pytest.mark.parametrize(("name", "port"), SERVICE_PORTS.items())
def test_service_serves_on_all_interfaces_and_checks_its_own_health(
    services: dict[str, Any], name: str, port: int
) -> None:
    service = services[name]
    command = service["command"]
    assert command[3] == "serve"
    assert option(command, "--host") == "0.0.0.0"  # noqa: S104 - inside the container
    assert int(option(command, "--port")) == port
    test = service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]  # the slim image has no curl
    assert f"urllib.request.urlopen('http://127.0.0.1:{port}/healthz'" in test[3]
    compile(test[3], "healthcheck", "exec")


def test_migrations_run_once_the_database_is_up_and_before_their_service(
    services: dict[str, Any],
) -> None:
    for name, module in MIGRATIONS.items():
        assert services[name]["command"] == ["python", "-m", module, "migrate"]
        assert services[name]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
        assert services[name]["restart"] == "no"
    assert services["auth"]["depends_on"]["auth-migrate"] == {
        "condition": "service_completed_successfully"
    }
    assert services["facturation"]["depends_on"]["facturation-migrate"] == {
        "condition": "service_completed_successfully"
    }
    assert services["gateway"]["depends_on"] == {
        "auth": {"condition": "service_healthy"},
        "facturation": {"condition": "service_healthy"},
    }


def test_app_containers_run_hardened_from_the_one_image(services: dict[str, Any]) -> None:
    for name in [*SERVICE_PORTS, *MIGRATIONS]:
        service = services[name]
        assert service["build"] == {"context": "..", "dockerfile": "Dockerfile"}, name
        assert service["image"] == "${FACTURATION_IMAGE:-facturation:local}", name
        assert service["user"] == "10001:10001"
        assert service["read_only"] is True
        assert service["tmpfs"] == ["/tmp"]  # noqa: S108 - inside the container
        assert service["cap_drop"] == ["ALL"]
        assert service["security_opt"] == ["no-new-privileges:true"]


@pytest.mark.parametrize("name", [*SERVICE_PORTS, *MIGRATIONS])
def test_each_container_gets_only_settings_its_service_reads(
    services: dict[str, Any], name: str
) -> None:
    service = services[name]
    given = set(service["environment"])
    assert given <= env_names(served_module(service["command"])), name


def test_secrets_stay_with_the_service_that_owns_them(services: dict[str, Any]) -> None:
    def given(name: str) -> set[str]:
        return set(services[name]["environment"])

    assert not {n for n in given("gateway") if n.startswith(("STRIPE_", "JWT_"))}
    assert not {n for n in given("gateway") if n.endswith("DATABASE_URL")}
    assert not {n for n in given("auth") if n.startswith("STRIPE_")}
    assert not {n for n in given("facturation") if n.startswith("JWT_")}
    assert given("auth-migrate") == {"AUTH_DATABASE_URL"}
    assert given("facturation-migrate") == {"FACTURATION_DATABASE_URL"}
    assert "env_file" not in str(compose())  # would hand every secret to every container


def test_every_interpolated_variable_is_documented_in_the_env_example() -> None:
    used = set(INTERPOLATION.findall(json.dumps(compose())))  # values, not comments
    documented = {
        line.lstrip("# ").split("=", 1)[0]
        for line in COMPOSE_ENV_EXAMPLE.read_text().splitlines()
        if re.match(r"^#? ?[A-Z0-9_]+=", line)
    }
    assert used - documented == set()
    assert documented - used == set()


def test_required_secrets_are_required_by_interpolation() -> None:
    text = json.dumps(compose())
    for secret in (
        "POSTGRES_PASSWORD",
        "AUTH_DB_PASSWORD",
        "FACTURATION_DB_PASSWORD",
        "INTERNAL_TOKEN",
        "JWT_PRIVATE_KEY",
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
    ):
        uses = re.findall(r"\$\{" + secret + r"(:?[-?])", text)
        assert uses, secret
        assert set(uses) == {":?"}, f"{secret} must stop compose when unset or empty"


def test_postgres_init_script_creates_one_database_and_owner_per_service(
    services: dict[str, Any],
) -> None:
    mounts = services["postgres"]["volumes"]
    script_mount = next(m for m in mounts if "docker-entrypoint-initdb.d" in m)
    source = DEPLOY / script_mount.split(":")[0]
    assert source.stat().st_mode & stat.S_IXUSR
    sql = source.read_text()
    for database in ("auth", "facturation"):
        assert f"CREATE ROLE {database} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE" in sql
        assert f"CREATE DATABASE {database} OWNER {database};" in sql
        assert f"REVOKE ALL ON DATABASE {database} FROM PUBLIC;" in sql
        url = services[database]["environment"][f"{database.upper()}_DATABASE_URL"]
        assert url.startswith(f"postgresql://{database}:")
        assert url.endswith(f"/{database}")
