"""The deploy/ files as data, for the tests that check them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import yaml

from auth_service.settings import AuthSettings
from facturation_service.settings import FacturationSettings
from gateway.settings import GatewaySettings
from shared._settings import env_name

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE_FILE = DEPLOY / "compose.yaml"
COMPOSE_ENV_EXAMPLE = DEPLOY / "compose.env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# Read by shared.run_service and shared.configure_logging for every service.
# Read by shared.run_service for every service, not by a settings class.
COMMON_ENV = frozenset({"LOG_LEVEL", "HOST", "PORT", "WORKERS", "FORWARDED_ALLOW_IPS"})

SETTINGS_BY_MODULE: dict[str, type[msgspec.Struct]] = {
    "gateway": GatewaySettings,
    "auth_service": AuthSettings,
    "facturation_service": FacturationSettings,
}


def env_names(module: str) -> frozenset[str]:
    """Every environment variable the service reads, taken from its own settings class."""
    fields = msgspec.structs.fields(SETTINGS_BY_MODULE[module])
    return COMMON_ENV | {env_name(field) for field in fields}


def k8s_manifest_files() -> list[Path]:
    return sorted(path for path in K8S.glob("*.yaml") if path.name != "kustomization.yaml")


def k8s_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def all_k8s_documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in k8s_manifest_files():
        for document in k8s_documents(path):
            yield path, document


def k8s_objects(kind: str) -> dict[str, dict[str, Any]]:
    """Objects of one kind, by name."""
    return {doc["metadata"]["name"]: doc for _, doc in all_k8s_documents() if doc["kind"] == kind}


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


def served_module(command: list[str]) -> str:
    """``python -m MODULE ...`` → MODULE."""
    assert command[:2] == ["python", "-m"], command
    return command[2]


def option(command: list[str], name: str) -> str:
    """The value of the last ``--name value`` in a command line, as argparse would read it."""
    values = [command[i + 1] for i, arg in enumerate(command[:-1]) if arg == name]
    assert values, f"{name} missing from {command}"
    return values[-1]
