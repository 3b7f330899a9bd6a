"""Fault 3: three replicas on one Redis, one of them killed with `kill -9` in the middle of the load.

The company spreads each chat's messages over the replicas and, when one stops answering, sends to the next.
Whatever the killed replica had taken over or was delivering is picked up by the others once its lease runs
out: nothing is lost, every chat keeps its order, and a message comes twice only if it was being delivered
at the moment of the kill (at most one per delivery worker of the killed replica), right after itself.
"""

from __future__ import annotations

import asyncio

from bridge.emulator import RunningEmulator
from tests.conftest import free_port
from tests.faults.harness import (
    FAST_DELIVERY,
    Company,
    Fleet,
    accepted_bodies,
    bridge_config,
    check_arrivals,
    eventually,
    http_channel,
    text_of,
)

REPLICAS = 3
CHATS = 8
PER_CHAT = 30


async def test_a_replica_killed_mid_load_loses_and_reorders_nothing(
    redis_url: str, redis_cleanup: str, fleet: Fleet, company: Company, platform: RunningEmulator
) -> None:
    config = bridge_config([http_channel(platform.url)], store_url=f"{redis_url}?prefix={redis_cleanup}",
                           port=free_port())
    replicas = [fleet.add(config, f"replica-{n}", port=free_port()) for n in range(REPLICAS)]
    victim, survivors = replicas[1], [replicas[0], replicas[2]]
    await asyncio.gather(*(replica.start() for replica in replicas))
    expected = {f"c{chat}": [f"c{chat}/{n:02d}" for n in range(PER_CHAT)] for chat in range(CHATS)}
    every_text = {text for texts in expected.values() for text in texts}

    load = asyncio.gather(
        *(company.send_chat([r.url for r in replicas], chat, texts) for chat, texts in expected.items())
    )

    async def a_third_taken_over() -> bool:
        return company.taken_over() >= len(every_text) // 3

    try:
        await eventually(a_third_taken_over, "a third of the load taken over")
        await victim.kill()
        assert company.taken_over() < len(every_text), "the kill came after the load"
    finally:
        await load

    await platform.wait_until(lambda: {text_of(b) for b in accepted_bodies(platform.received())} >= every_text,
                              timeout=30, what="every message")
    for replica in survivors:
        await replica.wait_drained()
    counts = check_arrivals(accepted_bodies(platform.received()), expected, may_repeat=every_text)
    repeats = {text: n for text, n in counts.items() if n > 1}
    assert sum(n - 1 for n in repeats.values()) <= FAST_DELIVERY["workers"], (
        f"more repeats than the killed replica could have had in flight: {repeats}"
    )
    # Each replica, the victim included, took part of the load over before the survivors took the rest.
    answered = {answer.url.rsplit("/channels/", 1)[0] for answer in company.answers if answer.status == 200}
    assert answered == {replica.url for replica in replicas}
