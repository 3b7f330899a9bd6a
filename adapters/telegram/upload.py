"""`files_as: upload`: the bridge downloads an agent's file itself and uploads it to Telegram.

For file URLs Telegram cannot fetch (an intranet file server, a URL that needs the bridge's network). Since the
bridge then reaches out on the agent's word, the download goes through `bridge.fetch`'s SSRF guard, with the
operator's allow-list. PTB reads an upload whole into its multipart body anyway, so the file is downloaded into
memory, bounded by Telegram's upload limits and the bridge's own `files.max_size_mb`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from telegram import InputFile

from adapters.telegram.convert import FileKind, file_kind
from bridge.fetch import SafeFetcher
from bridge.messages import OutboundFile

__all__ = ["PHOTO_UPLOAD_LIMIT", "UPLOAD_LIMIT", "Upload", "download_for_upload"]

# The Bot API takes multipart uploads up to 50 MB, photos up to 10 MB.
UPLOAD_LIMIT: Final = 50 * 1024 * 1024
PHOTO_UPLOAD_LIMIT: Final = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Upload:
    kind: FileKind
    file: InputFile
    size: int


async def download_for_upload(fetcher: SafeFetcher, content: OutboundFile) -> Upload:
    """The agent's file, downloaded through the guard. Raises `FetchRefused` / `FetchFailed`."""
    fetched = await fetcher.fetch(content.url, max_size=UPLOAD_LIMIT)
    name = content.name or fetched.name or "file"
    described = OutboundFile(url=content.url, name=name, content_type=content.content_type or fetched.content_type)
    kind = file_kind(described, "upload") or "document"
    if kind == "photo" and len(fetched.data) > PHOTO_UPLOAD_LIMIT:
        kind = "document"  # Telegram refuses larger photos, but takes them as documents
    return Upload(kind, InputFile(fetched.data, filename=name), len(fetched.data))
