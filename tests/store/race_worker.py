"""One process of the cross-process allocation race (run by test_store_races.py, not collected by pytest).

    python race_worker.py STORE_URL SEED CHANNEL:CHAT ...

Waits for a line on stdin so that every process starts together, then opens the store (racing the schema
migrations too) and allocates every chat concurrently in a seed-shuffled order. Prints one JSON object,
"CHANNEL:CHAT" -> chat id.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys

from bridge.store import open_store


async def race(url: str, seed: int, chats: list[str]) -> dict[str, int]:
    await asyncio.to_thread(sys.stdin.readline)
    store = open_store(url)
    await store.open()
    try:
        order = chats[:]
        random.Random(seed).shuffle(order)
        ids = await asyncio.gather(*(store.chat_id_for(*chat.split(":", 1)) for chat in order))
        return dict(zip(order, ids, strict=True))
    finally:
        await store.close()


def main() -> None:
    url, seed, *chats = sys.argv[1:]
    print(json.dumps(asyncio.run(race(url, int(seed), chats))), flush=True)


if __name__ == "__main__":
    main()
