"""Fault 6: the messenger answers 429 with `retry_after` for one chat.

That chat's replies wait at least as long as Telegram asked, then go out in their order, each once; the other
chat's replies, sent later, go out in the meantime: one chat's flood control never holds another up.
"""

from __future__ import annotations

import time
from typing import Any, SupportsIndex

import httpx

from bridge.emulator import RunningEmulator
from bridge.testing.telegram import Call, FakeTelegram
from tests.conftest import free_port
from tests.faults.harness import REPLY_TOKEN, Fleet, bridge_config, eventually, telegram_channel, text_of

RETRY_AFTER = 2
WAITING, FLOWING = 701, 702
REPLIES = 5


class TimedCalls(list[Call]):
    """The fake's call log, also noting when each call arrived."""

    def __init__(self, calls: list[Call]) -> None:
        super().__init__(calls)
        self.times: dict[int, float] = {}

    def append(self, call: Call) -> None:
        self.times[id(call)] = time.monotonic()
        super().append(call)

    def time_of(self, index: SupportsIndex) -> float:
        return self.times[id(self[index])]


async def test_a_flood_controlled_chat_waits_in_order_while_others_flow(
    store_url: str, fleet: Fleet, tg: FakeTelegram, platform: RunningEmulator
) -> None:
    bridge = fleet.add(bridge_config([telegram_channel(platform.url, tg, mode="polling")], store_url=store_url,
                                     port=free_port()))
    await bridge.start()
    for chat in (WAITING, FLOWING):
        tg.push_update(tg.message_update(chat, text=f"hello from {chat}"))
    received = await platform.wait_for_received(2, timeout=10)
    platform_chat = {int(text_of(r.body).rsplit(" ", 1)[1]): int(r.body["chat_id"]) for r in received}

    calls = TimedCalls(tg.calls)
    tg.calls = calls
    tg.fail("sendMessage", chat_id=WAITING, error_code=429, retry_after=RETRY_AFTER, times=1)
    async with httpx.AsyncClient(base_url=bridge.url, headers={"Authorization": f"Token {REPLY_TOKEN}"}) as client:
        for chat, prefix in ((WAITING, "w"), (FLOWING, "f")):
            for n in range(REPLIES):
                body: dict[str, Any] = {"chat_id": platform_chat[chat],
                                        "message": {"kind": "operator", "text": f"{prefix}/{n}"}}
                answer = await client.post("/channels/tg/send_message", json=body)
                assert answer.status_code == 200, answer.text

    async def all_sent() -> bool:
        return len(tg.sent_to(WAITING)) >= REPLIES and len(tg.sent_to(FLOWING)) >= REPLIES

    await eventually(all_sent, "every reply sent")
    await bridge.wait_drained()

    assert [m["text"] for m in tg.sent_to(WAITING)] == [f"w/{n}" for n in range(REPLIES)]
    assert [m["text"] for m in tg.sent_to(FLOWING)] == [f"f/{n}" for n in range(REPLIES)]
    sends = [(i, call) for i, call in enumerate(calls) if call.method == "sendMessage"]
    waiting = [(i, str(call.params["text"])) for i, call in sends if str(call.chat_id) == str(WAITING)]
    flowing = [i for i, call in sends if str(call.chat_id) == str(FLOWING)]
    # The refused call, then its retry and the rest of the chat, each once.
    assert [text for _, text in waiting] == ["w/0", "w/0", *(f"w/{n}" for n in range(1, REPLIES))]
    (refused, _), (retried, _) = waiting[:2]
    assert calls.time_of(retried) - calls.time_of(refused) >= RETRY_AFTER, "the chat did not wait retry_after"
    assert max(flowing) < retried, "the other chat's replies waited for the flood-controlled one"
