"""The sandbox is a dev and test tool: it never reaches the production image nor what a
production ``pip install .`` of the whole repository puts in site-packages."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.deploy.manifests import DOCKERFILE, DOCKERIGNORE, ROOT
from tests.deploy.wheels import build_wheel

SANDBOX = "stripe_sandbox"
SERVICES = ["shared", "gateway", "auth_service", "facturation_service"]


@pytest.fixture(scope="module")
def repository_wheel(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The file list of the wheel ``pip install .`` builds from a copy of the whole checkout."""
    checkout = tmp_path_factory.mktemp("checkout") / "repo"
    shutil.copytree(
        ROOT,
        checkout,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "node_modules", ".dev", "build", "*.egg-info", "__pycache__", "*.db*"
        ),
    )
    assert (checkout / SANDBOX / "__init__.py").is_file()
    with zipfile.ZipFile(build_wheel(checkout)) as archive:
        return archive.namelist()


def test_a_production_install_of_the_repository_leaves_out_the_sandbox(
    repository_wheel: list[str],
) -> None:
    top_level = {name.split("/")[0] for name in repository_wheel if "/" in name}
    assert {f"{package}" for package in SERVICES} <= top_level
    assert SANDBOX not in top_level
    assert "tests" not in top_level
    assert "scripts" not in top_level


def test_the_image_build_context_and_copies_never_include_the_sandbox() -> None:
    admitted = [
        line.strip()[1:]
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip().startswith("!")
    ]
    assert not any(SANDBOX in entry for entry in admitted)
    copies = re.findall(r"^COPY\s+(.+)$", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert copies
    assert not any(SANDBOX in copy for copy in copies)


def test_the_suite_and_make_dev_still_reach_the_sandbox_from_the_repo_root() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import stripe_sandbox; print(stripe_sandbox.__file__)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert Path(result.stdout.strip()).parent == ROOT / SANDBOX
