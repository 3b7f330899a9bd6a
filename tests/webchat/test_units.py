"""The web chat's pure parts: visitor id signing, its config, the per-visitor locks and the history."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from adapters.webchat import WebchatConfig
from adapters.webchat.history import History, KeyedLocks, find_button
from adapters.webchat.visitor import VisitorIds
from adapters.webchat.wire import Entry, decode_client_frame
from bridge.config import ChannelConfig, ConfigError, PlatformConfig, adapter_settings
from bridge.messages import Button
from bridge.store.keyvalue import StoreKeyValue
from bridge.store.sqlite import SqliteStore


def test_visitor_ids_round_trip_and_bind_to_key_and_channel() -> None:
    ids = VisitorIds("key-0123456789abcdef", "web")
    raw, signed = ids.issue()
    assert ids.verify(signed) == raw
    assert VisitorIds("key-0123456789abcdef", "other").verify(signed) is None
    assert VisitorIds("another-key-0123456789", "web").verify(signed) is None
    assert ids.issue()[0] != raw
    for bad in ("", ".", raw, f"{raw}.", f"{raw}.{signed[-10:]}", f"{raw.upper()}.{signed.partition('.')[2]}",
                f"{signed}x", "é.é"):
        assert ids.verify(bad) is None, bad


def _settings(block: dict[str, object]) -> WebchatConfig:
    from adapters.webchat import WebchatAdapter

    channel = ChannelConfig(id="web", platform=PlatformConfig(webhook_url="http://127.0.0.1:9/x"),
                            adapter={"type": "webchat", **block})
    settings = adapter_settings(channel, WebchatAdapter)
    assert isinstance(settings, WebchatConfig)
    return settings


def test_config_defaults_and_origin_normalisation() -> None:
    settings = _settings({"allowed_origins": ["HTTPS://Shop.Example.com/", "http://127.0.0.1:8080"]})
    assert settings.allowed_origins == ["https://shop.example.com", "http://127.0.0.1:8080"]
    assert (settings.secret, settings.title, settings.history_limit) == (None, "Chat", 50)


@pytest.mark.parametrize(
    ("block", "words"),
    [
        ({"secret": "short"}, "at least 16"),
        ({"allowed_origins": ["https://shop.example.com/chat"]}, "no path"),
        ({"allowed_origins": ["shop.example.com"]}, "not an origin"),
        ({"history_limit": 0}, ">= 1"),
        ({"colour": "blue"}, "colour"),
    ],
    ids=["short-secret", "origin-path", "origin-scheme", "history-limit", "unknown-key"],
)
def test_config_errors_are_clear(block: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError) as error:
        _settings(block)
    assert words in str(error.value)


def test_client_frames_are_decoded_strictly() -> None:
    with pytest.raises(ValueError, match="frame longer"):
        decode_client_frame('{"type": "text", "id": "a", "text": "' + "x" * 100_000 + '"}')
    with pytest.raises(ValueError, match="id"):
        decode_client_frame('{"type": "text", "id": "", "text": "x"}')
    with pytest.raises(ValueError, match="unknown"):
        decode_client_frame('{"type": "text", "id": "a", "text": "x", "extra": 1}')


async def test_keyed_locks_serialise_per_key_and_forget_idle_keys() -> None:
    locks = KeyedLocks()
    order: list[str] = []

    async def worker(key: str, name: str, pause: float) -> None:
        async with locks.hold(key):
            order.append(f"{name}+")
            await asyncio.sleep(pause)
            order.append(f"{name}-")

    await asyncio.gather(worker("a", "a1", 0.02), worker("a", "a2", 0), worker("b", "b1", 0))
    assert order.index("a1-") < order.index("a2+")
    assert order.index("b1+") < order.index("a1-")  # another key does not wait
    assert len(locks) == 0


async def test_history_keeps_the_last_entries_and_survives_damage(tmp_path: object) -> None:
    store = SqliteStore(f"{tmp_path}/h.db")
    await store.open()
    try:
        kv = StoreKeyValue(store, "adapter:web")
        history = History(kv, limit=2, ttl=60)
        for n in range(3):
            assert await history.append("v", Entry(id=f"a:{n}", sender="agent", kind="text", ts=n, text=str(n)))
        assert not await history.append("v", Entry(id="a:2", sender="agent", kind="text", ts=9, text="again"))
        assert [e.id for e in await history.load("v")] == ["a:1", "a:2"]
        await history.remove("v", "a:1")
        assert [e.id for e in await history.load("v")] == ["a:2"]
        assert await history.load("someone-else") == []
        await kv.set("history:v", b"{damaged")
        assert await history.load("v") == []
    finally:
        await store.close()


def test_find_button_looks_at_the_latest_keyboards() -> None:
    old = Entry(id="a:1", sender="agent", kind="keyboard", ts=1, rows=[[Button("yes", "Old yes")]])
    new = Entry(id="a:2", sender="agent", kind="keyboard", ts=2, rows=[[Button("yes", "Yes"), Button("no", "No")]])
    text = Entry(id="a:3", sender="agent", kind="text", ts=3, text="yes")
    assert find_button([old, new, text], "yes") == Button("yes", "Yes")
    assert find_button([old, new], "no") == Button("no", "No")
    assert find_button([text], "yes") is None


def test_entries_encode_without_empty_fields() -> None:
    entry = Entry(id="a:1", sender="agent", kind="text", ts=1.5, text="hi")
    assert msgspec.json.decode(msgspec.json.encode(entry)) == {
        "id": "a:1", "sender": "agent", "kind": "text", "ts": 1.5, "text": "hi"}
