"""Fixtures of the store contract suite: every test using `store_url` or `store` runs on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.store import Store, open_store


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL of a fresh, empty store: a new SQLite file, or a Redis prefix no other test uses."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'store.db'}"
    redis_url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_cleanup")
    return f"{redis_url}?prefix={prefix}"


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = open_store(store_url)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
