from __future__ import annotations

from pathlib import Path

import pytest

from shared import Database, database_url
from tests.support.processes import run_module


def test_a_sqlite_url_gets_its_folder_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/a/b/service.db"
    assert (
        database_url("EXAMPLE_DATABASE_URL", "sqlite:///unused.db", {"EXAMPLE_DATABASE_URL": url})
        == url
    )
    assert (tmp_path / "a" / "b").is_dir()


def test_the_default_applies_when_the_variable_is_unset_or_empty(tmp_path: Path) -> None:
    default = f"sqlite:///{tmp_path}/default/service.db"
    assert database_url("EXAMPLE_DATABASE_URL", default, {}) == default
    assert database_url("EXAMPLE_DATABASE_URL", default, {"EXAMPLE_DATABASE_URL": ""}) == default
    assert (tmp_path / "default").is_dir()


def test_a_postgresql_url_is_returned_as_is_and_creates_nothing(tmp_path: Path) -> None:
    url = "postgresql://user@127.0.0.1:5432/db"
    assert database_url("EXAMPLE_DATABASE_URL", "", {"EXAMPLE_DATABASE_URL": url}) == url
    assert database_url("EXAMPLE_DATABASE_URL", "sqlite:///:memory:", {}) == "sqlite:///:memory:"


async def test_a_database_opens_a_sqlite_file_in_a_folder_that_did_not_exist(
    tmp_path: Path,
) -> None:
    database = Database(f"sqlite:///{tmp_path}/missing/service.db")
    try:
        await database.ping()
    finally:
        await database.dispose()
    assert (tmp_path / "missing" / "service.db").is_file()


@pytest.mark.parametrize(
    ("module", "database"), [("auth_service", "auth.db"), ("facturation_service", "facturation.db")]
)
def test_migrate_works_in_an_empty_directory(module: str, database: str, tmp_path: Path) -> None:
    result = run_module(module, "migrate", env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".dev" / database).is_file()
