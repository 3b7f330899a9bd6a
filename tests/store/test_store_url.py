"""`open_store(url)`: which backend a `store.url` names, and the errors of a bad one."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.store import SUPPORTED_SCHEMES, open_store
from bridge.store._shared import redact_url
from bridge.store.redis import RedisStore
from bridge.store.sqlite import SqliteStore


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///data/bridge.db", Path("data/bridge.db")),
        ("sqlite:///./data/bridge.db", Path("data/bridge.db")),
        ("sqlite:////var/lib/bridge/bridge.db", Path("/var/lib/bridge/bridge.db")),
        ("SQLite:///bridge.db", Path("bridge.db")),
    ],
)
def test_sqlite_urls(url: str, path: Path) -> None:
    store = open_store(url)
    assert isinstance(store, SqliteStore)
    assert store.path == path


async def test_a_relative_sqlite_path_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///./state/bridge.db")
    await store.open()
    await store.close()
    assert (tmp_path / "state" / "bridge.db").is_file()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://bridge.db", "three slashes"),
        ("sqlite:///", "must name a database file"),
        ("sqlite:////var/lib/", "must name a database file"),
        ("sqlite:///bridge.db?mode=ro", "no query parameters"),
        ("redis://", "needs a host"),
        ("redis://127.0.0.1/0?prefix=", "must not be empty"),
        ("redis://127.0.0.1/0?prefix=a&prefix=b", "more than once"),
    ],
)
def test_malformed_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_store(url)


def test_redis_urls_keep_their_options_and_take_the_prefix_out() -> None:
    store = open_store("redis://:pw@127.0.0.1:6380/3?prefix=bridge-a&socket_keepalive=true")
    assert isinstance(store, RedisStore)
    assert store.prefix == "bridge-a"
    assert store.url == "redis://:pw@127.0.0.1:6380/3?socket_keepalive=true"

    default = open_store("rediss://redis.internal:6380/0")
    assert isinstance(default, RedisStore)
    assert default.prefix == "omnichannel-bridge"
    assert default.url == "rediss://redis.internal:6380/0"


async def test_a_redis_url_with_prefix_reaches_the_right_keys(redis_url: str, redis_cleanup: str) -> None:
    store = open_store(f"{redis_url}?prefix={redis_cleanup}")
    await store.open()
    try:
        await store.kv_set("ns", "k", b"v")
        direct = RedisStore(redis_url, prefix=redis_cleanup)
        await direct.open()
        assert await direct.kv_get("ns", "k") == b"v"
        await direct.close()
    finally:
        await store.close()


@pytest.mark.parametrize("url", ["postgres://db/bridge", "memory://", "mysql+pymysql://x"])
def test_an_unsupported_scheme_names_it_and_the_supported_ones(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        open_store(url)
    message = str(caught.value)
    assert repr(url.partition("://")[0]) in message
    for scheme in SUPPORTED_SCHEMES:
        assert f"{scheme}://" in message


@pytest.mark.parametrize("url", ["", "bridge.db", "/var/lib/bridge.db"])
def test_a_url_without_a_scheme_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="unsupported store URL scheme ''; supported: sqlite://"):
        open_store(url)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://user:s3cret@host/0", "redis://user:***@host/0"),
        ("rediss://s3cret@host/0", "rediss://***@host/0"),
        ("redis://host/0?password=s3cret&db=2", "redis://host/0?password=***&db=2"),
        ("redis://host:6379/0", "redis://host:6379/0"),
    ],
)
def test_redact_url_hides_passwords(url: str, shown: str) -> None:
    assert redact_url(url) == shown
