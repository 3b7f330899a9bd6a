"""`GET /files/{token}`: the visitor-file proxy behind the URLs that `bridge.files` signs.

The file is fetched from the adapter on each request (Telegram's own links expire after an hour) and streamed
through chunk by chunk, so a large file never sits whole in memory. Every refusal is a JSON body with a status
that says what happened (403 tampered, 410 expired, 404 gone, 413 too large, 502 messenger unreachable), is
counted in `omnichannel_bridge_files_refused_total` and logged; the token itself is never logged (it is a
capability), only the channel it names.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any
from urllib.parse import quote

import msgspec
from litestar import Response, get
from litestar.params import FromPath
from litestar.response import Stream

from bridge._errors import describe_error
from bridge.adapter import Adapter, AdapterError, FileDownload, FileGone, FileTooLarge
from bridge.files import FileClaim, FileUrlSigner, TokenExpired, TokenInvalid
from bridge.metrics import Metrics
from bridge.protocol import error_body

__all__ = ["StreamOverrun", "file_routes"]

log = logging.getLogger("bridge.files")

_encode = msgspec.json.Encoder().encode


class StreamOverrun(Exception):
    """A stream of unannounced size went past the limit. Raised mid-answer (the chunked answer is then never
    terminated), so that the client sees a broken download rather than a truncated file that looks complete."""


def _error(status: int, error: str, desc: str) -> Response[bytes]:
    return Response(content=error_body(error, desc), status_code=status, media_type="application/json")


def _disposition(name: str) -> str:
    ascii_name = name.encode("ascii", "replace").decode("ascii").replace('"', "'").replace("?", "_")
    ascii_name = "".join(c if c.isprintable() else "_" for c in ascii_name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def _too_large(size: int | None, limit: int | None, desc: str) -> Response[bytes]:
    body: dict[str, Any] = {"error": "too_large", "desc": desc}
    if size is not None:
        body["size"] = size
    if limit is not None:
        body["limit"] = limit
    return Response(content=_encode(body), status_code=413, media_type="application/json")


def file_routes(
    signer_of: Any,
    adapters: Mapping[str, Adapter],  # type: ignore[type-arg]
    max_size: int,
    *,
    metrics: Metrics | None = None,
) -> list[Any]:
    """`signer_of()` returns the signer, which exists only once the store has given the signing key."""

    def refused(channel: str, reason: str, level: int = logging.INFO, **fields: Any) -> None:
        if metrics is not None:
            metrics.count_file_refused(channel, reason)
        log.log(level, "file link refused", extra={"channel": channel, "reason": reason, **fields})

    def over_limit(claim: FileClaim, size: int | None, limit: int | None, desc: str) -> Response[bytes]:
        refused(claim.channel_id, "too_large", logging.WARNING, size=size, limit=limit)
        return _too_large(size, limit, desc)

    async def open_file(claim: FileClaim, adapter: Adapter) -> FileDownload | Response[bytes]:  # type: ignore[type-arg]
        channel = claim.channel_id
        try:
            return await adapter.open_file(claim.file_ref)
        except FileTooLarge as exc:
            return over_limit(claim, exc.size or claim.size or None, exc.limit, str(exc))
        except FileGone as exc:
            refused(channel, "gone", why=str(exc))
            return _error(404, "not_found", "the messenger no longer has this file")
        except AdapterError as exc:
            refused(channel, "unavailable", logging.WARNING, why=str(exc))
            return _error(502, "bad_gateway", "the messenger could not be asked for this file; try again later")
        except Exception as exc:
            refused(channel, "unavailable", logging.ERROR, why=describe_error(exc))
            return _error(502, "bad_gateway", "the messenger could not be asked for this file; try again later")

    @get("/files/{token:str}", name="file")
    async def serve_file(token: FromPath[str]) -> Response[bytes] | Stream:
        signer: FileUrlSigner = signer_of()
        try:
            claim = signer.verify(token)
        except TokenInvalid:
            refused("", "invalid")
            return _error(403, "forbidden", "this file link is not valid")
        except TokenExpired as exc:
            refused(exc.claim.channel_id if exc.claim else "", "expired")
            return _error(410, "expired", "this file link has expired")
        adapter = adapters.get(claim.channel_id)
        if adapter is None:
            refused(claim.channel_id, "unknown_channel")
            return _error(404, "not_found", "the channel of this file is not configured")
        if claim.size > max_size:
            # The messenger announced the size: no need to ask it for a file that will be refused anyway.
            return over_limit(claim, claim.size, max_size,
                              f"the file is {claim.size} bytes; the limit is {max_size} bytes")
        download = await open_file(claim, adapter)
        if isinstance(download, Response):
            return download
        if download.size is not None and download.size > max_size:
            await _close(download.chunks)
            return over_limit(claim, download.size, max_size,
                              f"the file is {download.size} bytes; the limit is {max_size} bytes")
        headers = {"Content-Disposition": _disposition(download.name or claim.name or "file")}
        if download.size is not None:
            headers["Content-Length"] = str(download.size)
        def overrun() -> None:
            refused(claim.channel_id, "too_large", logging.WARNING, announced=download.size)

        return Stream(
            _limited(download.chunks, download.size, max_size, overrun),
            # The type the messenger gave with the message wins: file servers often answer a generic one.
            media_type=claim.content_type or download.content_type or "application/octet-stream",
            headers=headers,
        )

    return [serve_file]


async def _close(chunks: AsyncIterator[bytes]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()


async def _limited(
    chunks: AsyncIterator[bytes], announced: int | None, max_size: int, overrun: Callable[[], None]
) -> AsyncIterator[bytes]:
    """Pass chunks on, one at a time. With an announced size, never more than it (the `Content-Length` sent
    already bounds the answer; more bytes would corrupt the connection); without one, the answer is broken off
    past `max_size`."""
    sent = 0
    limit = max_size if announced is None else announced
    try:
        async for chunk in chunks:
            if sent + len(chunk) > limit:
                overrun()
                if announced is None:
                    raise StreamOverrun(f"the file gave more than {limit} bytes")
                yield chunk[: limit - sent]
                return
            sent += len(chunk)
            yield chunk
    finally:
        await _close(chunks)
