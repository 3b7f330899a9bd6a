"""`GET /files/{token}`: the visitor-file proxy behind the URLs that `bridge.files` signs.

The file is fetched from the adapter on each request (Telegram's own links expire after an hour) and streamed
through, so a large file never sits whole in memory.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from litestar import Response, get
from litestar.params import FromPath
from litestar.response import Stream

from bridge.adapter import Adapter, FileGone
from bridge.files import FileUrlSigner, TokenExpired, TokenInvalid
from bridge.protocol import error_body

__all__ = ["file_routes"]

log = logging.getLogger("bridge.files")


def _error(status: int, error: str, desc: str) -> Response[bytes]:
    return Response(content=error_body(error, desc), status_code=status, media_type="application/json")


def _disposition(name: str) -> str:
    from urllib.parse import quote

    ascii_name = name.encode("ascii", "replace").decode("ascii").replace('"', "'").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


def file_routes(
    signer_of: Any, adapters: Mapping[str, Adapter], max_size: int  # type: ignore[type-arg]
) -> list[Any]:
    """`signer_of()` returns the signer, which exists only once the store has given the signing key."""

    @get("/files/{token:str}", name="file")
    async def serve_file(token: FromPath[str]) -> Response[bytes] | Stream:
        signer: FileUrlSigner = signer_of()
        try:
            claim = signer.verify(token)
        except TokenInvalid:
            return _error(403, "forbidden", "this file link is not valid")
        except TokenExpired:
            return _error(410, "expired", "this file link has expired")
        adapter = adapters.get(claim.channel_id)
        if adapter is None:
            return _error(404, "not_found", "the channel of this file is not configured")
        try:
            download = await adapter.open_file(claim.file_ref)
        except FileGone:
            return _error(404, "not_found", "the messenger no longer has this file")
        if download.size is not None and download.size > max_size:
            await _close(download.chunks)
            log.warning("file over the size limit refused", extra={"channel": claim.channel_id, "size": download.size})
            return _error(413, "too_large", f"the file is {download.size} bytes; the limit is {max_size} bytes")
        headers = {"Content-Disposition": _disposition(download.name or claim.name or "file")}
        if download.size is not None:
            headers["Content-Length"] = str(download.size)
        return Stream(
            _limited(download.chunks, max_size),
            media_type=download.content_type or claim.content_type or "application/octet-stream",
            headers=headers,
        )

    return [serve_file]


async def _close(chunks: AsyncIterator[bytes]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()


async def _limited(chunks: AsyncIterator[bytes], max_size: int) -> AsyncIterator[bytes]:
    """Stop a stream whose size was not known in advance once it passes the limit."""
    sent = 0
    try:
        async for chunk in chunks:
            sent += len(chunk)
            if sent > max_size:
                log.warning("file stream cut at the size limit", extra={"limit": max_size})
                return
            yield chunk
    finally:
        await _close(chunks)
