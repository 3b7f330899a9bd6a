"""Streaming a visitor's file out of Telegram for the bridge's file proxy.

Telegram's download URL embeds the bot token, so it is built here, used once, and never logged or put in an
error message. A fresh `getFile` runs for every download: Telegram's download links expire after an hour.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from telegram import Bot
from telegram.error import BadRequest, TelegramError

from bridge.adapter import AdapterError, FileDownload, FileGone, FileTooLarge, stream_download

__all__ = ["CLOUD_DOWNLOAD_LIMIT", "open_telegram_file"]

_CHUNK = 64 * 1024
# What the public Bot API lets a bot download; a local Bot API server has no such limit.
CLOUD_DOWNLOAD_LIMIT = 20 * 1024 * 1024


async def open_telegram_file(
    bot: Bot, http: httpx.AsyncClient, file_ref: str, *, limit: int | None = CLOUD_DOWNLOAD_LIMIT
) -> FileDownload:
    """The file behind `file_ref`, streamed. `limit` is the Bot API server's download limit, when known: the
    file proxy tells the agent about it when Telegram refuses a file as too big."""
    try:
        tg_file = await bot.get_file(file_ref)
    except BadRequest as exc:
        if "too big" in exc.message.lower():
            shown = f" ({limit // (1024 * 1024)} MB)" if limit else ""
            raise FileTooLarge(
                None,
                limit,
                f"the file is larger than the Bot API lets a bot download{shown}; a local Bot API server "
                "(the channel's api_base_url) lifts the limit",
            ) from None
        raise FileGone(f"Telegram does not have this file: {exc.message}") from None
    except TelegramError as exc:
        raise AdapterError(f"Telegram did not answer getFile: {type(exc).__name__}: {exc.message}") from None
    location = tg_file.file_path
    if not location:
        raise FileGone("Telegram gave no path for this file")
    if not location.startswith(("http://", "https://")):
        # A local Bot API server in --local mode hands out paths on its own disk.
        return await _local_file(Path(location), tg_file.file_size)
    try:
        response = await http.send(http.build_request("GET", location), stream=True)
    except httpx.HTTPError as exc:
        raise AdapterError(f"file download failed: {type(exc).__name__}") from None
    if response.status_code in (400, 404, 410):
        await response.aclose()
        raise FileGone(f"Telegram no longer has this file (HTTP {response.status_code})")
    if response.status_code >= 300:
        await response.aclose()
        raise AdapterError(f"file download failed with HTTP {response.status_code}")
    return stream_download(response, size=tg_file.file_size, chunk_size=_CHUNK)


async def _local_file(path: Path, size: int | None) -> FileDownload:
    if not await asyncio.to_thread(path.is_file):
        raise FileGone("the local Bot API server no longer has this file")
    handle = await asyncio.to_thread(path.open, "rb")

    async def chunks() -> AsyncIterator[bytes]:
        try:
            while chunk := await asyncio.to_thread(handle.read, _CHUNK):
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    return FileDownload(chunks=chunks(), size=size)
