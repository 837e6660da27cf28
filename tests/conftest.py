from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.databases import fresh_database


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: PostgreSQL when TEST_DATABASE_URL is set, SQLite otherwise."""
    async with fresh_database("test", tmp_path) as url:
        yield url
