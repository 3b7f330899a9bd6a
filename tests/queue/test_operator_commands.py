"""`omnichannel-bridge status` and `dead-letters ...`, run as real processes on real queues."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bridge.queue import Queue, open_queue
from tests.conftest import free_port
from tests.queue.helpers import inbound, outbound

CONFIG = """\
store:
  url: "{url}"
channels:
  - id: tg
    platform:
      webhook_url: https://app.example.com/hook/abc
      token: "0123456789abcdef0123456789abcdef"
    adapter:
      type: telegram
      bot_token: "123:abc"
  - id: web
    platform:
      webhook_url: https://app.example.com/hook/def
      token: "fedcba9876543210fedcba9876543210"
    adapter:
      type: webchat
"""


@dataclass
class Result:
    code: int
    out: str
    err: str


async def cli(*args: str) -> Result:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    result = Result(proc.returncode, out.decode(), err.decode())
    assert "Traceback" not in result.err, result.err
    return result


def write_config(tmp_path: Path, url: str) -> str:
    path = tmp_path / "bridge.yaml"
    path.write_text(CONFIG.format(url=url), encoding="utf-8")
    return str(path)


@pytest.fixture
async def queue(store_url: str) -> AsyncIterator[Queue]:
    q = open_queue(store_url)
    await q.open()
    yield q
    await q.close()


async def dead_letter_next(queue: Queue, reason: str) -> None:
    claim = await queue.claim(lease=30)
    assert claim is not None
    assert await queue.dead_letter(claim, reason)


async def test_status_lists_every_channel_and_direction(queue: Queue, store_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, store_url)
    await queue.put([inbound("a1"), inbound("a2"), inbound("b1", chat=2)])
    await queue.put([outbound("o1", chat=3), inbound("gone", channel="retired")])
    await dead_letter_next(queue, "platform answered 400")  # a1; its lane moves on to a2
    held = await queue.claim(lease=30)  # the next ready lane: b1, now in flight
    assert held is not None and held.dedupe_key == "b1"

    result = await cli("status", "-c", config, "--json")
    assert result.code == 0, result.err
    rows = json.loads(result.out)
    ages = [row.pop("oldest_age") for row in rows]
    assert rows == [
        {"channel_id": "retired", "direction": "inbound", "queued": 1, "in_flight": 0, "dead_letters": 0},
        {"channel_id": "tg", "direction": "inbound", "queued": 1, "in_flight": 1, "dead_letters": 1},
        {"channel_id": "tg", "direction": "outbound", "queued": 1, "in_flight": 0, "dead_letters": 0},
        {"channel_id": "web", "direction": "inbound", "queued": 0, "in_flight": 0, "dead_letters": 0},
        {"channel_id": "web", "direction": "outbound", "queued": 0, "in_flight": 0, "dead_letters": 0},
    ]
    assert all(age >= 0 for age in ages[:3]) and ages[3:] == [None, None]

    table = await cli("status", "-c", config)
    assert table.code == 0
    lines = [line.split() for line in table.out.splitlines()]
    assert lines[0] == ["CHANNEL", "DIRECTION", "QUEUED", "IN", "FLIGHT", "OLDEST", "DEAD", "LETTERS"]
    assert [line[:4] + line[5:] for line in lines[1:]] == [
        ["retired", "inbound", "1", "0", "0"],
        ["tg", "inbound", "1", "1", "1"],
        ["tg", "outbound", "1", "0", "0"],
        ["web", "inbound", "0", "0", "0"],
        ["web", "outbound", "0", "0", "0"],
    ]
    assert [line[4] for line in lines[4:]] == ["-", "-"], "no age for an empty backlog"


async def test_dead_letters_list_show_replay_drop(queue: Queue, store_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, store_url)
    await queue.put([inbound("n1", text="first"), inbound("n2"), inbound("n3"), outbound("x", chat=5)])
    await dead_letter_next(queue, "platform answered 400: invalid text")  # n1
    await dead_letter_next(queue, "messenger answered 403: bot blocked")  # x
    await dead_letter_next(queue, "platform answered 404: unknown chat")  # n2

    listed = await cli("dead-letters", "list", "-c", config, "--json")
    assert listed.code == 0, listed.err
    letters = json.loads(listed.out)
    assert [d["dedupe_key"] for d in letters] == ["n1", "x", "n2"]
    first, blocked, second = (d["id"] for d in letters)
    inbound_only = await cli("dead-letters", "list", "-c", config, "--direction", "inbound", "--json")
    assert [d["dedupe_key"] for d in json.loads(inbound_only.out)] == ["n1", "n2"]
    table = await cli("dead-letters", "list", "-c", config, "--channel", "tg", "--limit", "1")
    assert table.out.splitlines()[1].split()[:5] == [first, "tg", "inbound", "1", "1"]
    assert table.out.rstrip().endswith("platform answered 400: invalid text")

    shown = await cli("dead-letters", "show", first, "-c", config)
    assert shown.code == 0
    assert "platform answered 400: invalid text" in shown.out and '"text": "first"' in shown.out
    missing = await cli("dead-letters", "show", first, "no-such-id", "-c", config)
    assert missing.code == 1 and "no dead letter with id 'no-such-id'" in missing.err

    replayed = await cli("dead-letters", "replay", second, first, "-c", config)
    assert replayed.code == 0, replayed.err
    assert replayed.out.strip() == f"replayed 2 dead letter(s): {first}, {second}"
    order = []
    while (claim := await queue.claim(lease=30)) is not None:
        if claim.channel_id == "tg" and claim.direction == "inbound":
            order.append(claim.dedupe_key)
            assert await queue.ack(claim)
    assert order == ["n3", "n1", "n2"], "replayed at the chat's tail, in their original order"

    dropped = await cli("dead-letters", "drop", "--all", "--channel", "tg", "-c", config)
    assert dropped.out.strip() == f"dropped 1 dead letter(s): {blocked}"
    assert (await cli("dead-letters", "list", "-c", config)).out.strip() == "no dead letters"
    again = await cli("dead-letters", "drop", blocked, "-c", config)
    assert again.code == 1 and f"no dead letter with id {blocked!r}" in again.err


async def test_bad_input_gets_one_clear_line(tmp_path: Path) -> None:
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text("channels: []\ndelivery:\n  workers: 0\n", encoding="utf-8")
    result = await cli("status", "-c", str(invalid))
    assert result.code == 2 and "delivery.workers" in result.err

    no_db = write_config(tmp_path, f"sqlite:///{tmp_path}/typo.db")
    result = await cli("dead-letters", "list", "-c", no_db)
    assert result.code == 1 and "no queue database at" in result.err
    assert not (tmp_path / "typo.db").exists(), "looking must not create an empty database"

    down = write_config(tmp_path, f"redis://127.0.0.1:{free_port()}/0")
    result = await cli("status", "-c", down)
    assert result.code == 1 and result.err.startswith("status: cannot reach the queue's Redis")

    result = await cli("dead-letters", "replay", "-c", down)
    assert result.code == 2 and "give dead-letter ids or --all" in result.err
    result = await cli("dead-letters", "list", "-c", down, "--direction", "sideways")
    assert result.code == 2 and "invalid choice" in result.err
