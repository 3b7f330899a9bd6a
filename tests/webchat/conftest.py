from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.webchat.helpers import ChatLoop, chat_loop


@pytest.fixture
async def chat(tmp_path: Path) -> AsyncIterator[ChatLoop]:
    async with chat_loop(f"sqlite:///{tmp_path}/bridge.db", title="Help <desk>") as loop:
        yield loop
