"""The behaviour every `Store` backend must share, run against SQLite and Redis alike."""

from __future__ import annotations

import asyncio
import math

import pytest

from bridge.adapter import KeyValue
from bridge.protocol import VisitorFields
from bridge.store import ChatRecord, Store, StoreError, open_store
from bridge.store.keyvalue import StoreKeyValue

TTL = 0.2
PAST_TTL = 0.3  # sleep this long for a TTL of `TTL` to have run out


# --------------------------------------------------------------------------- lifecycle


async def test_open_and_close_are_idempotent(store_url: str) -> None:
    store = open_store(store_url)
    await store.open()
    await store.open()
    await store.ping()
    await store.close()
    await store.close()


async def test_calls_on_a_store_that_is_not_open_raise_store_error(store_url: str) -> None:
    store = open_store(store_url)
    with pytest.raises(StoreError, match="not open"):
        await store.ping()
    with pytest.raises(StoreError, match="not open"):
        await store.chat_id_for("tg", "1")
    await store.open()
    await store.close()
    with pytest.raises(StoreError, match="not open"):
        await store.kv_get("ns", "k")


async def test_reopening_keeps_every_kind_of_data(store_url: str) -> None:
    first = open_store(store_url)
    await first.open()
    chat_id = await first.chat_id_for("tg", "100")
    await first.set_chat_data(chat_id, {"thread": "7"})
    await first.save_visitor("tg", "u1", VisitorFields(name="Ann", phone="+1"))
    await first.kv_set("ns", "k", b"v")
    await first.close()

    second = open_store(store_url)
    await second.open()
    try:
        assert await second.chat_id_for("tg", "100") == chat_id
        assert await second.chat_by_id(chat_id) == ChatRecord(chat_id, "tg", "100", {"thread": "7"})
        assert await second.get_visitor("tg", "u1") == VisitorFields(name="Ann", phone="+1")
        assert await second.kv_get("ns", "k") == b"v"
        assert await second.chat_id_for("tg", "101") != chat_id
    finally:
        await second.close()


# --------------------------------------------------------------------------- chat ids


async def test_chat_id_is_positive_and_stable(store: Store) -> None:
    chat_id = await store.chat_id_for("tg", "42")
    assert isinstance(chat_id, int)
    assert chat_id > 0
    assert await store.chat_id_for("tg", "42") == chat_id


async def test_chat_ids_are_distinct_per_chat_and_per_channel(store: Store) -> None:
    keys = [
        ("tg", "1"),
        ("tg", "2"),
        ("web", "1"),
        # pairs that would collide if channel and chat were naively joined with ":"
        ("a:b", "c"),
        ("a", "b:c"),
        ("a%3Ab", "c"),
        ("", ""),
        ("тг", "чат 1"),
    ]
    ids = [await store.chat_id_for(channel, native) for channel, native in keys]
    assert len(set(ids)) == len(keys)
    assert all(chat_id > 0 for chat_id in ids)
    for (channel, native), chat_id in zip(keys, ids, strict=True):
        assert await store.chat_id_for(channel, native) == chat_id


async def test_chat_by_id_finds_the_chat_and_none_for_unknown_ids(store: Store) -> None:
    chat_id = await store.chat_id_for("web", "a:b")
    assert await store.chat_by_id(chat_id) == ChatRecord(
        chat_id=chat_id, channel_id="web", native_chat_id="a:b", adapter_data={}
    )
    assert await store.chat_by_id(chat_id + 1000) is None
    assert await store.chat_by_id(0) is None
    # Any integer a caller sends is a question with an answer, even one no database column can hold.
    assert await store.chat_by_id(-1) is None
    assert await store.chat_by_id(10**30) is None


async def test_set_chat_data_replaces_the_adapter_data(store: Store) -> None:
    chat_id = await store.chat_id_for("tg", "9")
    await store.set_chat_data(chat_id, {"a": "1", "b": "ü"})
    record = await store.chat_by_id(chat_id)
    assert record is not None and record.adapter_data == {"a": "1", "b": "ü"}

    await store.set_chat_data(chat_id, {"c": "3"})
    record = await store.chat_by_id(chat_id)
    assert record is not None and record.adapter_data == {"c": "3"}
    assert await store.chat_id_for("tg", "9") == chat_id


async def test_set_chat_data_of_an_unknown_chat_raises_key_error(store: Store) -> None:
    chat_id = await store.chat_id_for("tg", "9")
    with pytest.raises(KeyError):
        await store.set_chat_data(chat_id + 1000, {"a": "1"})
    with pytest.raises(KeyError):
        await store.set_chat_data(10**30, {"a": "1"})
    assert await store.chat_by_id(chat_id + 1000) is None


async def test_concurrent_first_messages_of_one_chat_get_one_id(store: Store) -> None:
    # warm up (Redis: fill the connection pool) so the racing calls really interleave
    await asyncio.gather(*(store.ping() for _ in range(50)))
    ids = await asyncio.gather(*(store.chat_id_for("tg", "race") for _ in range(50)))
    assert len(set(ids)) == 1
    record = await store.chat_by_id(ids[0])
    assert record is not None and (record.channel_id, record.native_chat_id) == ("tg", "race")


async def test_concurrent_first_messages_of_many_chats_get_distinct_ids(store: Store) -> None:
    chats = [f"chat-{n % 20}" for n in range(100)]
    ids = await asyncio.gather(*(store.chat_id_for("tg", chat) for chat in chats))
    by_chat: dict[str, set[int]] = {}
    for chat, chat_id in zip(chats, ids, strict=True):
        by_chat.setdefault(chat, set()).add(chat_id)
    assert all(len(found) == 1 for found in by_chat.values())
    assert len({found.pop() for found in by_chat.values()}) == 20


# --------------------------------------------------------------------------- visitors


async def test_unknown_visitor_is_none(store: Store) -> None:
    assert await store.get_visitor("tg", "nobody") is None


async def test_save_visitor_merges_and_none_keeps_the_stored_value(store: Store) -> None:
    merged = await store.save_visitor("tg", "u1", VisitorFields(name="Ann"))
    assert merged == VisitorFields(name="Ann")

    merged = await store.save_visitor("tg", "u1", VisitorFields(phone="+100", email="a@example.org"))
    assert merged == VisitorFields(name="Ann", phone="+100", email="a@example.org")

    merged = await store.save_visitor("tg", "u1", VisitorFields(name="Anna", phone=None))
    assert merged == VisitorFields(name="Anna", phone="+100", email="a@example.org")
    assert await store.get_visitor("tg", "u1") == merged

    # an empty string is a value, not "unknown"
    merged = await store.save_visitor("tg", "u1", VisitorFields(email=""))
    assert merged.email == ""


async def test_visitors_are_separate_per_channel_and_user(store: Store) -> None:
    await store.save_visitor("tg", "u1", VisitorFields(name="Ann"))
    await store.save_visitor("web", "u1", VisitorFields(name="Bob"))
    await store.save_visitor("tg", "u2", VisitorFields(login="carl"))
    assert await store.get_visitor("tg", "u1") == VisitorFields(name="Ann")
    assert await store.get_visitor("web", "u1") == VisitorFields(name="Bob")
    assert await store.get_visitor("tg", "u2") == VisitorFields(login="carl")


async def test_a_visitor_saved_without_fields_is_known(store: Store) -> None:
    assert await store.save_visitor("tg", "quiet", VisitorFields()) == VisitorFields()
    assert await store.get_visitor("tg", "quiet") == VisitorFields()


async def test_an_unchanged_visitor_is_answered_from_memory_and_a_change_merges_with_the_stored_profile(
    store_url: str,
) -> None:
    # Two processes on one store: `other` changes the profile behind `mine`'s back.
    mine, other = open_store(store_url), open_store(store_url)
    await mine.open()
    await other.open()
    try:
        await mine.save_visitor("tg", "shared", VisitorFields(name="Ann"))
        await other.save_visitor("tg", "shared", VisitorFields(name="Bob"))
        # A message that changes nothing in what `mine` saved costs no read: `mine` answers what it saved
        # (profiles are informational; the cache's ttl bounds how stale that is).
        assert await mine.save_visitor("tg", "shared", VisitorFields(name="Ann")) == VisitorFields(name="Ann")
        assert await mine.get_visitor("tg", "shared") == VisitorFields(name="Bob")
        # A message that brings something new is merged into the stored profile, not the remembered one.
        merged = await mine.save_visitor("tg", "shared", VisitorFields(phone="+1"))
        assert merged == VisitorFields(name="Bob", phone="+1")
        assert await other.get_visitor("tg", "shared") == merged
    finally:
        await mine.close()
        await other.close()


async def test_concurrent_visitor_saves_lose_no_field(store: Store) -> None:
    updates = [
        VisitorFields(name="n"),
        VisitorFields(login="l"),
        VisitorFields(phone="p"),
        VisitorFields(email="e"),
        VisitorFields(site="s"),
    ]
    await asyncio.gather(*(store.save_visitor("tg", "busy", fields) for fields in updates))
    assert await store.get_visitor("tg", "busy") == VisitorFields(
        name="n", login="l", phone="p", email="e", site="s"
    )


# --------------------------------------------------------------------------- key-values


async def test_kv_get_set_delete(store: Store) -> None:
    assert await store.kv_get("ns", "k") is None
    await store.kv_set("ns", "k", b"\x00\xffvalue")
    assert await store.kv_get("ns", "k") == b"\x00\xffvalue"
    await store.kv_set("ns", "k", b"second")
    assert await store.kv_get("ns", "k") == b"second"
    await store.kv_set("ns", "empty", b"")
    assert await store.kv_get("ns", "empty") == b""
    await store.kv_delete("ns", "k")
    assert await store.kv_get("ns", "k") is None
    await store.kv_delete("ns", "never-set")  # deleting a missing key is not an error


async def test_kv_namespaces_are_separate(store: Store) -> None:
    await store.kv_set("a", "k", b"1")
    await store.kv_set("b", "k", b"2")
    await store.kv_set("a:k", "", b"3")  # would collide with ("a", "k:") if joined naively
    assert await store.kv_get("a", "k") == b"1"
    assert await store.kv_get("b", "k") == b"2"
    assert await store.kv_get("a", "k:") is None
    await store.kv_delete("a", "k")
    assert await store.kv_get("b", "k") == b"2"


async def test_kv_set_if_absent_sets_only_once(store: Store) -> None:
    assert await store.kv_set_if_absent("dedupe", "update-1", b"first") is True
    assert await store.kv_set_if_absent("dedupe", "update-1", b"second") is False
    assert await store.kv_get("dedupe", "update-1") == b"first"
    await store.kv_delete("dedupe", "update-1")
    assert await store.kv_set_if_absent("dedupe", "update-1", b"third") is True
    assert await store.kv_get("dedupe", "update-1") == b"third"


async def test_concurrent_set_if_absent_has_one_winner(store: Store) -> None:
    results = await asyncio.gather(
        *(store.kv_set_if_absent("dedupe", "same", str(n).encode(), ttl=60) for n in range(30))
    )
    assert results.count(True) == 1
    winner = results.index(True)
    assert await store.kv_get("dedupe", "same") == str(winner).encode()


async def test_kv_entries_expire_after_their_ttl(store: Store) -> None:
    await store.kv_set("ns", "short", b"1", ttl=TTL)
    await store.kv_set("ns", "long", b"2", ttl=60)
    await store.kv_set("ns", "kept", b"3")
    await store.kv_set("ns", "ttl-dropped", b"4", ttl=TTL)
    await store.kv_set("ns", "ttl-dropped", b"5")  # a set without TTL makes the key permanent
    assert await store.kv_set_if_absent("ns", "nx-short", b"6", ttl=TTL) is True
    assert await store.kv_get("ns", "short") == b"1"
    assert await store.kv_get("ns", "nx-short") == b"6"

    await asyncio.sleep(PAST_TTL)

    assert await store.kv_get("ns", "short") is None
    assert await store.kv_get("ns", "nx-short") is None
    assert await store.kv_get("ns", "long") == b"2"
    assert await store.kv_get("ns", "kept") == b"3"
    assert await store.kv_get("ns", "ttl-dropped") == b"5"
    # an expired key counts as absent
    assert await store.kv_set_if_absent("ns", "short", b"again", ttl=60) is True
    assert await store.kv_get("ns", "short") == b"again"


@pytest.mark.parametrize("ttl", [0, -1, math.nan, math.inf])
async def test_a_meaningless_ttl_is_refused(store: Store, ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await store.kv_set("ns", "k", b"v", ttl=ttl)
    with pytest.raises(ValueError, match="ttl"):
        await store.kv_set_if_absent("ns", "k", b"v", ttl=ttl)
    assert await store.kv_get("ns", "k") is None


async def test_store_key_value_is_bound_to_its_namespace(store: Store) -> None:
    telegram: KeyValue = StoreKeyValue(store, "channel:telegram")
    web: KeyValue = StoreKeyValue(store, "channel:web")
    await telegram.set("secret", b"t")
    assert await web.get("secret") is None
    assert await web.set_if_absent("secret", b"w", ttl=60) is True
    assert await web.set_if_absent("secret", b"x") is False
    assert await telegram.get("secret") == b"t"
    assert await store.kv_get("channel:web", "secret") == b"w"
    await telegram.delete("secret")
    assert await telegram.get("secret") is None
    assert await web.get("secret") == b"w"
    await telegram.set("token", b"1", ttl=TTL)
    assert await telegram.get("token") == b"1"


def test_store_key_value_needs_a_namespace() -> None:
    with pytest.raises(ValueError, match="namespace"):
        StoreKeyValue(open_store("sqlite:///unused.db"), "")
