"""Sending agent messages through PTB's `Bot`, and mapping Telegram's failures onto the queue's two kinds.

Retries are the durable queue's business, so nothing here retries: a 429 or a network error becomes
`RetryableSendError`, a refusal (blocked bot, unknown chat, bad request) `PermanentSendError`.
What this layer remembers lives in the channel's key-value store, so it holds across replicas and restarts:
the parts of a message already sent, the bot's last message per chat, and tokens for long button ids.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence

import msgspec
from telegram import Bot, InlineKeyboardMarkup, InputFile
from telegram import Message as TgMessage
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)

from adapters.telegram.config import TelegramConfig
from adapters.telegram.convert import (
    CALLBACK_TOKEN_PREFIX,
    button_rows,
    callback_data_for,
    file_kind,
    link_text,
)
from adapters.telegram.limits import RateLimited, retry_after_seconds
from adapters.telegram.upload import Upload, download_for_upload
from bridge.adapter import KeyValue, PermanentSendError, RetryableSendError
from bridge.fetch import FetchFailed, FetchRefused, SafeFetcher
from bridge.messages import Button, Outbound, OutboundFile, OutboundKeyboard, OutboundText
from bridge.text import split_text, text_length

__all__ = ["MAX_BUTTONS", "MAX_BUTTONS_PER_ROW", "MAX_TEXT", "TelegramSender", "url_refused"]

MAX_TEXT = 4096
MAX_BUTTONS_PER_ROW = 8
MAX_BUTTONS = 100

# Telegram's descriptions when it cannot fetch or use a file given by URL.
_URL_REFUSALS = (
    "failed to get http url content",
    "wrong file identifier",
    "wrong type of the web page content",
    "wrong remote file",
    "http url specified",
    "url host is empty",
    "webpage_media_empty",
    "webpage_curl_failed",
    "invalid file http url",
    "wrong http url",
)


def url_refused(error: BadRequest) -> bool:
    """Whether Telegram refused a file because of its URL (then the link is sent as text instead)."""
    text = error.message.lower()
    return any(marker in text for marker in _URL_REFUSALS)


class _LastMessage(msgspec.Struct, array_like=True):
    message_id: int
    at: float
    has_markup: bool


_last_codec = msgspec.json.Encoder()
_last_decoder = msgspec.json.Decoder(_LastMessage)


class TelegramSender:
    def __init__(
        self,
        bot: Bot,
        config: TelegramConfig,
        kv: KeyValue,
        log: logging.Logger,
        stats: Counter[str],
        *,
        wall_clock: Callable[[], float] = time.time,
        fetcher: SafeFetcher | None = None,
    ) -> None:
        self.bot = bot
        self.fetcher = fetcher or SafeFetcher()
        self.config = config
        self.kv = kv
        self.log = log
        self.stats = stats
        self.wall_clock = wall_clock
        # Fallback when the store is unreachable; the store is authoritative because replicas share it.
        self._last: dict[int, _LastMessage] = {}

    async def send(self, message: Outbound) -> None:
        try:
            chat_id = int(message.native_chat_id)
        except ValueError:
            raise PermanentSendError(f"not a Telegram chat id: {message.native_chat_id!r}") from None
        try:
            await self._send(chat_id, message)
        except RateLimited as exc:
            self.stats["rate_limited"] += 1
            raise RetryableSendError(str(exc), retry_after=exc.retry_after) from exc
        except RetryAfter as exc:
            self.stats["flood_wait"] += 1
            seconds = retry_after_seconds(exc)
            self.log.warning("telegram flood control", extra={"chat": chat_id, "retry_after": seconds})
            raise RetryableSendError("Telegram flood control", retry_after=seconds) from exc
        except Forbidden as exc:
            self._permanent(chat_id, "forbidden", exc)
        except ChatMigrated as exc:
            self._permanent(chat_id, f"chat migrated to {exc.new_chat_id}", exc)
        except BadRequest as exc:
            self._permanent(chat_id, "bad request", exc)
        except InvalidToken as exc:
            # A configuration problem: keep the messages until an operator fixes the token.
            self.log.error("telegram refused the bot token", extra={"chat": chat_id})
            raise RetryableSendError(f"invalid bot token: {exc.message}") from exc
        except (NetworkError, TelegramError) as exc:
            raise RetryableSendError(f"{type(exc).__name__}: {exc.message}") from exc

    def _permanent(self, chat_id: int, what: str, exc: TelegramError) -> None:
        self.stats["permanent_failures"] += 1
        self.log.warning("telegram refused a message", extra={"chat": chat_id, "reason": f"{what}: {exc.message}"})
        raise PermanentSendError(f"{what}: {exc.message}") from exc

    async def _send(self, chat_id: int, message: Outbound) -> None:
        content = message.content
        if isinstance(content, OutboundText):
            parts = self._text_parts(content.text)
            await self._send_parts(chat_id, message.message_id, [(part, None) for part in parts])
        elif isinstance(content, OutboundKeyboard):
            await self._send_keyboard(chat_id, message.message_id, content)
        else:
            await self._send_file(chat_id, message.message_id, content)

    def _text_parts(self, text: str) -> list[str]:
        if not text.strip():
            self.log.info("empty text not sent: Telegram refuses empty messages")
            return []
        if text_length(text, "utf16") <= MAX_TEXT:
            return [text]
        return split_text(text, MAX_TEXT, "utf16")

    # ------------------------------------------------------------------ parts and their memory

    async def _send_parts(
        self,
        chat_id: int,
        message_id: str,
        parts: Sequence[tuple[str, InlineKeyboardMarkup | None]],
        *,
        done: int | None = None,
    ) -> None:
        """Send text parts in order, skipping those a previous attempt already sent."""
        if done is None:
            done = await self._parts_done(message_id)
        for index, (text, markup) in enumerate(parts):
            if index < done:
                continue
            sent = await self.bot.send_message(chat_id=chat_id, text=text, reply_markup=markup)
            await self._after_send(chat_id, message_id, index + 1, sent, markup is not None)

    async def _parts_done(self, message_id: str) -> int:
        try:
            raw = await self.kv.get(f"sent:{message_id}")
        except Exception:
            self.log.warning("store unreachable: cannot tell which parts were sent", exc_info=True)
            return 0
        return int(raw) if raw and raw.isdigit() else 0

    async def _after_send(
        self, chat_id: int, message_id: str, done: int, sent: TgMessage, has_markup: bool
    ) -> None:
        last = _LastMessage(sent.message_id, self.wall_clock(), has_markup)
        self._remember_locally(chat_id, last)
        try:
            await self.kv.set(f"sent:{message_id}", str(done).encode(), ttl=self.config.sent_memory_ttl)
            ttl = max(self.config.keyboard_attach_window, 1.0) * 6
            await self.kv.set(f"last:{chat_id}", _last_codec.encode(last), ttl=ttl)
        except Exception:
            # The message is out; failing now would only send it twice.
            self.log.warning("store unreachable: sent message not remembered", exc_info=True)

    def _remember_locally(self, chat_id: int, last: _LastMessage) -> None:
        if len(self._last) > 1000:
            horizon = self.wall_clock() - self.config.keyboard_attach_window
            self._last = {k: v for k, v in self._last.items() if v.at >= horizon}
        self._last[chat_id] = last

    async def _last_message(self, chat_id: int) -> _LastMessage | None:
        try:
            raw = await self.kv.get(f"last:{chat_id}")
        except Exception:
            return self._last.get(chat_id)
        if raw is None:
            return None
        try:
            return _last_decoder.decode(raw)
        except msgspec.DecodeError:
            return None

    # ------------------------------------------------------------------ keyboards

    async def _callback_data(self, rows: Sequence[Sequence[Button]]) -> dict[str, str]:
        """`callback_data` per button id, storing tokens for ids too long for Telegram's 64 bytes."""
        mapping: dict[str, str] = {}
        for button in (b for row in rows for b in row):
            data, stored = callback_data_for(button.id)
            if stored and button.id not in mapping:
                token = data.removeprefix(CALLBACK_TOKEN_PREFIX)
                await self.kv.set(f"cb:{token}", button.id.encode(), ttl=self.config.callback_token_ttl or None)
            mapping[button.id] = data
        return mapping

    async def _send_keyboard(self, chat_id: int, message_id: str, content: OutboundKeyboard) -> None:
        data = await self._callback_data(content.rows)
        markups = button_rows(
            content.rows, lambda b: data[b.id], per_row=MAX_BUTTONS_PER_ROW, max_buttons=MAX_BUTTONS
        )
        texts = self._text_parts(content.text or "")
        if not markups:
            await self._send_parts(chat_id, message_id, [(t, None) for t in texts])
            return
        done = await self._parts_done(message_id)
        parts: list[tuple[str, InlineKeyboardMarkup | None]]
        if texts:
            parts = [(t, None) for t in texts[:-1]] + [(texts[-1], markups[0])]
        else:
            # Part 0 is the first keyboard: attached to the previous message, or else sent with the prompt.
            parts = [(self.config.keyboard_prompt, markups[0])]
            if done == 0 and await self._attach(chat_id, message_id, markups[0]):
                done = 1
        parts.extend((self.config.keyboard_prompt, markup) for markup in markups[1:])
        await self._send_parts(chat_id, message_id, parts, done=done)

    async def _attach(self, chat_id: int, message_id: str, markup: InlineKeyboardMarkup) -> bool:
        """Put `markup` under the bot's last message when it was sent moments ago and has no keyboard yet."""
        last = await self._last_message(chat_id)
        if last is None or last.has_markup:
            return False
        if self.wall_clock() - last.at > self.config.keyboard_attach_window:
            return False
        try:
            edited = await self.bot.edit_message_reply_markup(
                chat_id=chat_id, message_id=last.message_id, reply_markup=markup
            )
        except BadRequest as exc:
            # Deleted, too old to edit, or otherwise refused: send the keyboard on its own instead.
            self.log.info("keyboard not attached", extra={"chat": chat_id, "reason": exc.message})
            return False
        if isinstance(edited, TgMessage):
            await self._after_send(chat_id, message_id, 1, edited, True)
        return True

    # ------------------------------------------------------------------ files

    async def _send_file(self, chat_id: int, message_id: str, content: OutboundFile) -> None:
        if await self._parts_done(message_id) > 0:
            return
        kind = file_kind(content, self.config.files_as)
        if kind is None:
            await self._send_parts(chat_id, message_id, [(link_text(content), None)])
            return
        media: str | InputFile = content.url
        if self.config.files_as == "upload":
            upload = await self._download(chat_id, content)
            if upload is None:
                await self._send_parts(chat_id, message_id, [(link_text(content), None)])
                return
            kind, media = upload.kind, upload.file
        try:
            if kind == "photo":
                sent = await self.bot.send_photo(chat_id=chat_id, photo=media)
            elif kind == "video":
                sent = await self.bot.send_video(chat_id=chat_id, video=media)
            elif kind == "audio":
                sent = await self.bot.send_audio(chat_id=chat_id, audio=media)
            else:
                sent = await self.bot.send_document(chat_id=chat_id, document=media)
        except BadRequest as exc:
            if not isinstance(media, str) or not url_refused(exc):
                raise
            self.stats["file_as_link"] += 1
            self.log.info("telegram refused a file URL; sending the link", extra={"chat": chat_id})
            await self._send_parts(chat_id, message_id, [(link_text(content), None)])
            return
        await self._after_send(chat_id, message_id, 1, sent, False)

    async def _download(self, chat_id: int, content: OutboundFile) -> Upload | None:
        """The agent's file for an upload; None when it must go as a link instead (the guard refused it, or
        the server will not serve it). A passing failure (timeout, 5xx) is retried by the queue."""
        try:
            return await download_for_upload(self.fetcher, content)
        except FetchRefused as exc:
            self.stats["file_refused"] += 1
            self.log.warning("agent file not uploaded; sending its link", extra={"chat": chat_id, "reason": exc.reason})
            return None
        except FetchFailed as exc:
            if exc.retryable:
                raise RetryableSendError(f"the agent's file could not be downloaded: {exc.reason}") from exc
            self.stats["file_as_link"] += 1
            self.log.warning("agent file not downloadable; sending its link", extra={"chat": chat_id,
                                                                                    "reason": exc.reason})
            return None
