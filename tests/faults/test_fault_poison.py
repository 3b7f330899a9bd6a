"""Fault 5: a poison message, one the platform refuses with 400 whatever the attempt.

It is dead-lettered at once with the platform's reason (a 400 will not heal by retrying), the chat's next
messages flow past it, and once the platform accepts it, `omnichannel-bridge dead-letters replay` (run as the
operator runs it, against the live bridge's store) gets it delivered, once, with its original `message.id`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass

from bridge.emulator import RunningEmulator
from tests.conftest import free_port
from tests.faults.harness import (
    BridgeProcess,
    Company,
    Fleet,
    accepted_bodies,
    bridge_config,
    check_arrivals,
    http_channel,
    text_of,
)

POISON = "c0/1 poison"


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


async def operator(bridge: BridgeProcess, *args: str) -> Ran:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", "dead-letters", args[0], "-c", str(bridge.config_path), *args[1:],
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    ran = Ran(process.returncode, out.decode(), err.decode())
    assert "Traceback" not in ran.err, ran.err
    return ran


async def test_poison_is_dead_lettered_passed_and_replayed(
    store_url: str, fleet: Fleet, company: Company, platform: RunningEmulator
) -> None:
    platform.add_fault(status=400, match_text="poison", body={"error": "Missing required parameter: nonsense"})
    bridge = fleet.add(bridge_config([http_channel(platform.url)], store_url=store_url, port=free_port()))
    await bridge.start()
    sent = {"c0": ["c0/0", POISON, "c0/2", "c0/3"], "c1": ["c1/0", "c1/1"]}
    await asyncio.gather(*(company.send_chat([bridge.url], chat, texts) for chat, texts in sent.items()))

    await platform.wait_until(lambda: len(accepted_bodies(platform.received())) >= 5, timeout=10,
                              what="the five good messages")
    await bridge.wait_drained()
    check_arrivals(accepted_bodies(platform.received()), {"c0": ["c0/0", "c0/2", "c0/3"], "c1": ["c1/0", "c1/1"]})
    [refused] = [record for record in platform.received() if record.outcome != "accepted"]
    assert (text_of(refused.body), refused.status) == (POISON, 400), "tried once: a 400 is not retried"

    listed = await operator(bridge, "list", "--json")
    assert listed.code == 0, listed.err
    [letter] = json.loads(listed.out)
    assert (letter["channel_id"], letter["direction"], letter["attempts"]) == ("desk", "inbound", 1)
    assert letter["reason"] == "platform 400: Missing required parameter: nonsense"
    assert letter["chat_id"] == refused.body["chat_id"]

    platform.clear_faults()  # the platform was fixed
    replayed = await operator(bridge, "replay", letter["id"])
    assert (replayed.code, replayed.out.strip()) == (0, f"replayed 1 dead letter(s): {letter['id']}")
    await platform.wait_until(lambda: len(accepted_bodies(platform.received())) >= 6, timeout=10,
                              what="the replayed message")
    await bridge.wait_drained()

    check_arrivals(accepted_bodies(platform.received()),
                   {"c0": ["c0/0", "c0/2", "c0/3", POISON], "c1": ["c1/0", "c1/1"]})
    assert accepted_bodies(platform.received())[-1] == refused.body, "the same message, the same message.id"
    assert json.loads((await operator(bridge, "list", "--json")).out) == []
