"""deploy/postgres/init-databases.sh, run by psql against the real PostgreSQL of the suite: each
service's role owns its database and can do nothing else — not open the other service's
database, not create databases or roles.

Runs where the suite has PostgreSQL (``TEST_DATABASE_URL``, as in CI); with SQLite there is no
server to run it against, so the test is not defined. Role and database names get a random
suffix, since roles are shared by the whole server.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import URL, make_url

from tests.deploy.manifests import DEPLOY
from tests.support.databases import TEST_DATABASE_URL, using_postgres

SCRIPT = DEPLOY / "postgres" / "init-databases.sh"
SERVICES = ("auth", "facturation")


def _psql(url: URL, sql: str, *, user: str | None = None, database: str | None = None) -> str:
    env = {
        **os.environ,
        "PGHOST": url.host or "127.0.0.1",
        "PGPORT": str(url.port or 5432),
        "PGPASSWORD": url.password or "",
    }
    result = subprocess.run(
        [
            "psql",
            "--no-psqlrc",
            "-v",
            "ON_ERROR_STOP=1",
            "-tA",
            "-U",
            user or url.username or "postgres",
            "-d",
            database or url.database or "postgres",
            "-c",
            sql,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise PermissionError(result.stderr.strip())
    return result.stdout.strip()


if using_postgres():

    @pytest.fixture
    def initialised() -> Iterator[tuple[URL, dict[str, str]]]:
        url = make_url(TEST_DATABASE_URL)
        suffix = uuid.uuid4().hex[:8]
        names = {service: f"{service}_{suffix}" for service in SERVICES}
        script = SCRIPT.read_text()
        for service, name in names.items():
            script = re.sub(rf"\b{service}\b", name, script)
        assert shutil.which("psql"), "psql runs the init script, as in the postgres image"
        env = {
            **os.environ,
            "PGHOST": url.host or "127.0.0.1",
            "PGPORT": str(url.port or 5432),
            "PGPASSWORD": url.password or "",
            "POSTGRES_USER": url.username or "postgres",
            "AUTH_DB_PASSWORD": "pw-with-'quote",
            "FACTURATION_DB_PASSWORD": 'pw-with-"dq$x',
        }
        try:
            subprocess.run(
                ["sh", "-c", script], env=env, capture_output=True, timeout=60, check=True
            )
            yield url, names
        finally:
            for name in names.values():
                _psql(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                _psql(url, f'DROP ROLE IF EXISTS "{name}"')

    def test_each_role_owns_only_its_database_and_has_no_other_right(
        initialised: tuple[URL, dict[str, str]],
    ) -> None:
        url, names = initialised
        for service, name in names.items():
            other = names[next(s for s in SERVICES if s != service)]
            # Its own database: connect, create and drop a table (what migrations do).
            assert _psql(url, "SELECT current_user", user=name, database=name) == name
            _psql(url, "CREATE TABLE probe (id int); DROP TABLE probe", user=name, database=name)
            with pytest.raises(PermissionError, match="CONNECT"):
                _psql(url, "SELECT 1", user=name, database=other)
            with pytest.raises(PermissionError, match="permission denied"):
                _psql(url, f'CREATE DATABASE "{name}_x"', user=name, database=name)
            with pytest.raises(PermissionError, match="permission denied"):
                _psql(url, f'CREATE ROLE "{name}_x"', user=name, database=name)
            flags = _psql(
                url,
                f"SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
                f"WHERE rolname = '{name}'",
            )
            assert flags == "f|f|f"
