"""The fault switch (`/_emulator/mode`): chosen answers for the next N requests or for matching texts."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from bridge.emulator import FaultRule, RunningEmulator
from bridge.handoff import Delivered, Permanent, Retry
from bridge.platform import PlatformClient
from bridge.protocol import NewMessage, TextVisitorMessage, Visitor
from tests.emulator.conftest import HEADER_TOKEN, SECRET_TOKEN
from tests.emulator.helpers import FakeBridge


def text_message(text: str, chat_id: int = 42) -> NewMessage:
    return NewMessage(chat_id=chat_id, visitor=Visitor(id="v-1"), message=TextVisitorMessage(id=text, text=text))


async def set_mode(http: aiohttp.ClientSession, platform: RunningEmulator, rule: dict[str, Any]) -> Any:
    async with http.post(platform.url + "/_emulator/mode", json=rule) as response:
        assert response.status == 200, await response.text()
        return await response.json()


@pytest.fixture
async def client() -> Any:
    async with PlatformClient(timeout=0.5, connect_timeout=0.5) as platform_client:
        yield platform_client


async def test_next_n_requests_get_the_status(
    platform: RunningEmulator, http: aiohttp.ClientSession, client: PlatformClient, fake_bridge: FakeBridge
) -> None:
    await set_mode(http, platform, {"status": 503, "count": 3})
    url = platform.webhook_url(HEADER_TOKEN)

    outcomes = [await client.post_new_message(url, text_message(f"t{n}")) for n in range(4)]

    assert outcomes[:3] == [Retry("platform 503: emulated fault 503")] * 3
    assert outcomes[3] == Delivered()
    assert [r.outcome for r in platform.received()] == ["fault", "fault", "fault", "accepted"]
    # Faulted messages were not taken: only the fourth reaches the agent.
    [seen] = await fake_bridge.wait_for(1)
    assert seen.body["message"]["text"] == "You said: t3"
    async with http.get(platform.url + "/_emulator/mode") as response:
        assert await response.json() == {"faults": []}


async def test_poison_text_is_refused_until_cleared(
    platform: RunningEmulator, http: aiohttp.ClientSession, client: PlatformClient
) -> None:
    answer = await set_mode(http, platform, {"status": 400, "match_text": "poison"})
    assert answer["faults"][0]["match_text"] == "poison"
    url = platform.webhook_url(HEADER_TOKEN)

    assert await client.post_new_message(url, text_message("fine")) == Delivered()
    for _ in range(2):
        assert await client.post_new_message(url, text_message("a poison pill")) == Permanent(
            "platform 400: emulated fault 400"
        )

    async with http.delete(platform.url + "/_emulator/mode") as response:
        assert response.status == 200
    assert await client.post_new_message(url, text_message("a poison pill")) == Delivered()


async def test_fault_body_headers_and_token_scope(platform: RunningEmulator, client: PlatformClient) -> None:
    platform.add_fault(
        status=429,
        token=SECRET_TOKEN,
        body={"error": "rate_limited", "desc": "slow down"},
        headers={"Retry-After": "7"},
    )

    assert await client.post_new_message(platform.webhook_url(HEADER_TOKEN), text_message("x")) == Delivered()
    outcome = await client.post_new_message(platform.webhook_url(SECRET_TOKEN), text_message("y"))
    assert outcome == Retry("platform 429: rate_limited: slow down", retry_after=7.0)


async def test_a_delayed_answer_is_a_timeout_for_the_client(platform: RunningEmulator) -> None:
    platform.add_fault(FaultRule(status=200, count=1, delay=0.3))

    async with PlatformClient(timeout=0.1) as impatient:
        outcome = await impatient.post_new_message(platform.webhook_url(HEADER_TOKEN), text_message("slow"))

    assert outcome == Retry("timeout after 0.1s")


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"status": 99}, "Expected `int` >= 100"),
        ({"status": 503, "count": 0}, "Expected `int` >= 1"),
        ({"status": 503, "cuont": 2}, "unknown field `cuont`"),
        ({"count": 2}, "missing required field `status`"),
    ],
)
async def test_bad_mode_requests_get_a_clear_400(
    platform: RunningEmulator, http: aiohttp.ClientSession, rule: dict[str, Any], expected: str
) -> None:
    async with http.post(platform.url + "/_emulator/mode", json=rule) as response:
        assert response.status == 400
        assert expected in (await response.json())["error"]
    async with http.get(platform.url + "/_emulator/mode") as response:
        assert await response.json() == {"faults": []}


async def test_reset_clears_faults_and_records(
    platform: RunningEmulator, http: aiohttp.ClientSession, client: PlatformClient
) -> None:
    await set_mode(http, platform, {"status": 500})
    url = platform.webhook_url(HEADER_TOKEN)
    assert isinstance(await client.post_new_message(url, text_message("x")), Retry)

    async with http.post(platform.url + "/_emulator/reset") as response:
        assert response.status == 200

    assert platform.received() == []
    assert await client.post_new_message(url, text_message("x")) == Delivered()
