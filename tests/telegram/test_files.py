"""Visitor files streamed out of Telegram: getFile every time, chunked download, gone files, no token leaks."""

from __future__ import annotations

import pytest

from adapters.telegram import TelegramAdapter
from bridge.adapter import AdapterError, FileGone, FileTooLarge
from bridge.testing.telegram import FakeTelegram


async def read_all(adapter: TelegramAdapter, file_ref: str) -> tuple[bytes, int, int | None]:
    download = await adapter.open_file(file_ref)
    chunks = [chunk async for chunk in download.chunks]
    return b"".join(chunks), len(chunks), download.size


async def test_file_is_streamed_in_chunks(tg: FakeTelegram, adapter: TelegramAdapter) -> None:
    content = bytes(range(256)) * 2000  # 512 000 bytes
    tg.add_file("doc-1", content, file_path="documents/file_1.pdf")
    data, chunks, size = await read_all(adapter, "doc-1")
    assert data == content
    assert size == len(content)
    assert chunks > 1, "streamed, not read whole"
    await read_all(adapter, "doc-1")
    # Download links expire, so every download asks Telegram again.
    assert [c.params["file_id"] for c in tg.calls_to("getFile")] == ["doc-1", "doc-1"]


async def test_unknown_file_is_gone(tg: FakeTelegram, adapter: TelegramAdapter) -> None:
    with pytest.raises(FileGone) as info:
        await adapter.open_file("nope")
    assert tg.token not in str(info.value)


async def test_lost_download_is_gone(tg: FakeTelegram, adapter: TelegramAdapter) -> None:
    tg.add_file("doc-2", b"x", downloadable=False)
    with pytest.raises(FileGone, match="404") as info:
        await adapter.open_file("doc-2")
    assert tg.token not in str(info.value)


async def test_too_big_file_names_the_remedy(tg: FakeTelegram, adapter: TelegramAdapter) -> None:
    tg.max_download_size = 10
    tg.add_file("big", b"x" * 11)
    with pytest.raises(FileTooLarge, match="api_base_url"):
        await adapter.open_file("big")


async def test_telegram_outage_is_not_gone(tg: FakeTelegram, adapter: TelegramAdapter) -> None:
    tg.add_file("doc-3", b"x")
    tg.fail("getFile", error_code=502)
    with pytest.raises(AdapterError) as info:
        await adapter.open_file("doc-3")
    assert not isinstance(info.value, FileGone)
    assert tg.token not in str(info.value)
    data, _, _ = await read_all(adapter, "doc-3")
    assert data == b"x"
