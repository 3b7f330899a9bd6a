"""Fault 4: Telegram delivers one update five times (its webhook retries, a proxy repeats a request), first one
after the other, then all at once alongside a fresh update. The platform must get one POST per message."""

from __future__ import annotations

import asyncio
from typing import Any

from bridge.emulator import RunningEmulator
from bridge.testing.telegram import FakeTelegram
from tests.conftest import free_port
from tests.faults.harness import Fleet, accepted_bodies, bridge_config, check_arrivals, telegram_channel

REPLAYS = 5


def update(tg: FakeTelegram, update_id: int, chat: int, text: str) -> dict[str, Any]:
    return {"update_id": update_id, **tg.message_update(chat, text=text, message_id=update_id)}


async def test_a_replayed_update_reaches_the_platform_once(
    store_url: str, fleet: Fleet, tg: FakeTelegram, platform: RunningEmulator
) -> None:
    port = free_port()
    bridge = fleet.add(bridge_config([telegram_channel(platform.url, tg, mode="webhook")], store_url=store_url,
                                     port=port, public_url=f"http://127.0.0.1:{port}"))
    await bridge.start()
    assert tg.webhook_url == f"{bridge.url}/channels/tg/telegram/webhook"

    in_sequence = update(tg, 1001, 601, "replayed in sequence")
    statuses = [(await tg.post_webhook(in_sequence)).status_code for _ in range(REPLAYS)]

    concurrent, fresh = update(tg, 1002, 601, "replayed concurrently"), update(tg, 1003, 602, "fresh")
    answers = await asyncio.gather(*(tg.post_webhook(u) for u in [concurrent] * REPLAYS + [fresh]))
    statuses += [answer.status_code for answer in answers]
    assert statuses == [200] * (2 * REPLAYS + 1)

    # Later messages of both chats: once they are through, any repeat of an earlier one would be too.
    for later in (update(tg, 1004, 601, "later"), update(tg, 1005, 602, "later too")):
        assert (await tg.post_webhook(later)).status_code == 200
    await platform.wait_until(lambda: len(accepted_bodies(platform.received())) >= 5, timeout=10,
                              what="five messages")
    await bridge.wait_drained()

    check_arrivals(accepted_bodies(platform.received()), {
        "601": ["replayed in sequence", "replayed concurrently", "later"],
        "602": ["fresh", "later too"],
    })
    assert len(platform.received()) == 5, "one POST per message"
    assert await bridge.outcomes("duplicate") == 2 * (REPLAYS - 1)
