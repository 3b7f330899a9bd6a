"""Fixtures of the store contract suite: every test using `store_url` or `store` runs on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bridge.store import Store, open_store


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = open_store(store_url)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
