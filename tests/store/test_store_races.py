"""Several OS processes allocate the same chats at once against one SQLite file or one Redis prefix."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from bridge.store import open_store

WORKER = Path(__file__).with_name("race_worker.py")
PROCESSES = 4
CHATS = [f"{channel}:{n}" for channel in ("tg", "web") for n in range(60)]


async def test_processes_racing_on_first_messages_get_one_id_per_chat(store_url: str) -> None:
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            store_url,
            str(seed),
            *CHATS,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for seed in range(PROCESSES)
    ]
    try:
        # The workers have started Python and imported the store by the time they read the line, so
        # they race from one moment on; whichever comes first, they all read the same line.
        results = await asyncio.wait_for(
            asyncio.gather(*(worker.communicate(b"go\n") for worker in workers)), timeout=60
        )
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
    for worker, (_, stderr) in zip(workers, results, strict=True):
        assert worker.returncode == 0, stderr.decode()

    seen: list[dict[str, int]] = [json.loads(stdout) for stdout, _ in results]
    first = seen[0]
    assert set(first) == set(CHATS)
    for other in seen[1:]:
        assert other == first  # every process got the same id for every chat
    assert len(set(first.values())) == len(CHATS)  # and no two chats share an id
    assert all(chat_id > 0 for chat_id in first.values())

    store = open_store(store_url)
    await store.open()
    try:
        for chat, chat_id in first.items():
            record = await store.chat_by_id(chat_id)
            assert record is not None
            assert f"{record.channel_id}:{record.native_chat_id}" == chat
    finally:
        await store.close()
