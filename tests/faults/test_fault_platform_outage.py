"""Fault 1: the platform answers 503 for a while, then refuses connections, then recovers.

Visitors keep writing all along. Every message must reach the platform once it is back, each chat's in the
order it was sent, none twice; and the bridge must have answered every inbound request at once, because it only
stores the message before answering: the platform's state is no business of the webhook.
"""

from __future__ import annotations

import asyncio

from bridge.emulator import run_emulator
from tests.conftest import free_port
from tests.faults.harness import (
    BridgeProcess,
    Company,
    Fleet,
    accepted_bodies,
    bridge_config,
    check_arrivals,
    eventually,
    http_channel,
    silent_platform,
)

CHATS = 4
PER_PHASE = 4  # messages per chat sent during each phase: 503s, refused connections, recovered
SANITY_BOUND = 2.0  # seconds: no answer may take anywhere near this long; they take milliseconds


def phase_texts(phase: int) -> dict[str, list[str]]:
    return {f"c{chat}": [f"c{chat}/{phase}-{n}" for n in range(PER_PHASE)] for chat in range(CHATS)}


async def send_phase(company: Company, bridge: BridgeProcess, phase: int) -> None:
    await asyncio.gather(*(company.send_chat([bridge.url], chat, texts) for chat, texts in phase_texts(phase).items()))


async def test_503_then_refused_then_recovered_loses_reorders_and_repeats_nothing(
    store_url: str, fleet: Fleet, company: Company
) -> None:
    platform_port = free_port()
    platform_base = f"http://127.0.0.1:{platform_port}"
    bridge = fleet.add(bridge_config([http_channel(platform_base)], store_url=store_url, port=free_port()))
    bodies = []

    # Phase 0: the platform is up but answers every new_message with 503.
    async with run_emulator(silent_platform(), port=platform_port) as failing:
        failing.add_fault(status=503)
        await bridge.start()
        await send_phase(company, bridge, 0)
        # Each chat's head was tried and retried (503 is retryable) while visitors went on writing.
        await failing.wait_until(lambda: len(failing.received()) >= 2 * CHATS, timeout=10, what="503 retries")
        bodies += accepted_bodies(failing.received())
    assert bodies == []

    # Phase 1: nothing listens on the platform's port any more.
    retried_before = await bridge.outcomes("retried")
    await send_phase(company, bridge, 1)

    async def refused_retries() -> bool:
        return await bridge.outcomes("retried") >= retried_before + 2 * CHATS

    await eventually(refused_retries, "retries against the refused port")

    # Phase 2: the platform is back at the same address.
    async with run_emulator(silent_platform(), port=platform_port) as recovered:
        await send_phase(company, bridge, 2)
        total = CHATS * PER_PHASE * 3
        await recovered.wait_until(
            lambda: len(accepted_bodies(recovered.received())) >= total, timeout=20, what=f"{total} messages"
        )
        bodies += accepted_bodies(recovered.received())

    expected = {chat: [text for phase in range(3) for text in phase_texts(phase)[chat]] for chat in phase_texts(0)}
    check_arrivals(bodies, expected)
    assert [a for a in company.answers if a.status != 200] == [], "every inbound request is taken over at once"
    assert len(company.answers) == CHATS * PER_PHASE * 3
    slow = [a for a in company.answers if a.seconds >= SANITY_BOUND]
    assert slow == [], f"inbound answers waited on the platform: {slow}"
