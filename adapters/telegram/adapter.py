"""The Telegram adapter: PTB's `Application` driven inside the bridge's own lifespan.

The application is built with `updater=None` and started and stopped by `do_start`/`do_stop`; PTB's
`run_polling`/`run_webhook` would take over the event loop. Updates are not routed through PTB's update
queue and handlers, though: the queue acknowledges an update before it is processed, and the bridge must
answer Telegram (webhook status, polling offset) only after the core has taken every message over.
So each update is converted and submitted right where it arrives, and a failure makes Telegram redeliver.
Updates are read with the msgspec Structs of `wire`, not PTB's objects (see there why); PTB's `Bot` still
sends, downloads files and sets the webhook.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import secrets
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import httpx
import msgspec
from telegram import Bot
from telegram.error import Conflict, EndPointNotFound, Forbidden, InvalidToken, TelegramError
from telegram.ext import Application, ApplicationBuilder
from telegram.request import HTTPXRequest
from telegram.warnings import PTBUserWarning

from adapters.telegram.config import TelegramConfig
from adapters.telegram.convert import CALLBACK_TOKEN_PREFIX, ConvertOptions, convert_update
from adapters.telegram.files import CLOUD_DOWNLOAD_LIMIT, open_telegram_file
from adapters.telegram.limits import Clock, SendLimiter, TelegramRateLimiter
from adapters.telegram.redact import SecretRedactor
from adapters.telegram.send import MAX_BUTTONS, MAX_BUTTONS_PER_ROW, MAX_TEXT, TelegramSender
from adapters.telegram.wire import UnreadableUpdate, Update, parse_update
from bridge.adapter import Adapter, AdapterContext, AdapterError, Capabilities, FileDownload
from bridge.messages import Inbound, InboundButton, InboundText, Outbound
from bridge.protocol import error_body
from bridge.webhook import WebhookRequest, webhook_route

__all__ = ["ALLOWED_UPDATES", "SECRET_HEADER", "WEBHOOK_PATH", "TelegramAdapter"]

WEBHOOK_PATH: Final = "telegram/webhook"
SECRET_HEADER: Final = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES: Final = ("message", "edited_message", "callback_query")
_SECRET_KEY: Final = "webhook_secret"
_OK: Final = b'{"ok":true}'


@dataclass(frozen=True, slots=True)
class _Unreadable:
    """An update of a getUpdates batch that could not be read: skipped in its turn, never retried."""

    data: dict[str, Any]
    reason: str


class TelegramAdapter(Adapter[TelegramConfig]):
    name = "telegram"
    config_type = TelegramConfig
    capabilities = Capabilities(
        max_text_length=MAX_TEXT,
        text_unit="utf16",
        buttons=True,
        files=True,
        max_buttons_per_row=MAX_BUTTONS_PER_ROW,
        max_buttons=MAX_BUTTONS,
    )

    def __init__(self, config: TelegramConfig, context: AdapterContext, *, clock: Clock | None = None) -> None:
        super().__init__(config, context)
        self.mode: Literal["webhook", "polling"] = config.mode or (
            "webhook" if (context.public_url or "").startswith("https://") else "polling"
        )
        self.limiter = SendLimiter(config.rate_limits, clock)
        self.options = ConvertOptions(groups=config.groups, edits=config.edits, edit_marker=config.edit_marker)
        # Counters for what is logged and not forwarded (ignored groups, edits, refusals...).
        self.stats: Counter[str] = Counter()
        self._app: Application[Any, Any, Any, Any, Any, Any] | None = None
        self._sender: TelegramSender | None = None
        self._http: httpx.AsyncClient | None = None
        self._poll_task: asyncio.Task[None] | None = None
        self._offset: int | None = None
        self._secret: str | None = None
        self._redactor = SecretRedactor(config.bot_token.partition(":")[2], config.webhook_secret or "")

    # ------------------------------------------------------------------ lifecycle

    def _build_application(self) -> Application[Any, Any, Any, Any, Any, Any]:
        cfg = self.config
        builder = ApplicationBuilder().token(cfg.bot_token).updater(None)
        if cfg.api_base_url:
            builder = builder.base_url(f"{cfg.api_base_url}/bot").base_file_url(f"{cfg.api_base_url}/file/bot")
        connect, read = cfg.connect_timeout, cfg.request_timeout
        builder = builder.request(HTTPXRequest(connection_pool_size=16, connect_timeout=connect, read_timeout=read))
        # The long poll's own timeout is added to this read timeout by PTB.
        builder = builder.get_updates_request(HTTPXRequest(connect_timeout=connect, read_timeout=read))
        return builder.rate_limiter(TelegramRateLimiter(self.limiter)).build()

    @property
    def bot(self) -> Bot:
        if self._app is None:
            raise AdapterError("the Telegram adapter is not started")
        bot: Bot = self._app.bot
        return bot

    async def do_start(self) -> None:
        self._redactor.install()  # before PTB logs its first URL
        app = self._app = self._build_application()
        try:
            await app.initialize()  # getMe: fails fast on a wrong token
        except InvalidToken:
            raise AdapterError("Telegram refused the bot token (getMe failed)") from None
        await app.start()
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(self.config.request_timeout, connect=self.config.connect_timeout)
        )
        self._sender = TelegramSender(
            app.bot, self.config, self.context.kv, self.log, self.stats, fetcher=self.context.fetcher
        )
        if self.mode == "webhook":
            url = self.context.public_route_url(WEBHOOK_PATH)
            if url is None:
                raise AdapterError("webhook mode needs server.public_url (https) or mode: polling")
            self._secret = await self._webhook_secret()
            self._redactor.add(self._secret)
            try:
                await app.bot.set_webhook(url=url, secret_token=self._secret, allowed_updates=list(ALLOWED_UPDATES))
            except TelegramError as exc:
                # Typically "HTTPS url must be provided": Telegram only calls https webhooks on ports 443/80/88/8443.
                raise AdapterError(f"Telegram refused the webhook {url}: {exc.message}") from None
            self.log.info("telegram webhook set", extra={"url": url})
        else:
            # getUpdates is refused while a webhook is set (e.g. left over from an earlier webhook setup).
            await app.bot.delete_webhook(drop_pending_updates=False)
            # Polling reads getUpdates raw on purpose (see _get_updates); PTB warns on each such call.
            warnings.filterwarnings("ignore", message=r"Please use 'Bot\.getUpdates'", category=PTBUserWarning)
            self._poll_task = asyncio.create_task(self._poll_forever(), name=f"telegram-poll:{self.context.channel_id}")
            self.log.info("telegram polling started")

    async def do_stop(self) -> None:
        if self._poll_task is not None:
            self._poll_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll_task
            self._poll_task = None
            await self._confirm_offset()
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        app, self._app = self._app, None
        if app is not None:
            if app.running:
                await app.stop()
            await app.shutdown()
        self._sender = None
        self._secret = None
        self._redactor.remove()

    async def _webhook_secret(self) -> str:
        if self.config.webhook_secret:
            return self.config.webhook_secret
        # set_if_absent makes replicas that start together agree on one secret.
        await self.context.kv.set_if_absent(_SECRET_KEY, secrets.token_urlsafe(32).encode())
        stored = await self.context.kv.get(_SECRET_KEY)
        if not stored:
            raise AdapterError("the webhook secret could not be stored")
        return stored.decode()

    # ------------------------------------------------------------------ inbound

    async def ingest(self, update: Update) -> None:
        """Hand every message of `update` to the core; raise when one was not taken over, so that Telegram
        redelivers the update (the core recognises the messages already taken by their stable ids)."""
        try:
            converted = convert_update(update, self.options)
        except Exception:
            # A bug or an update this code cannot read: retrying would block the chat forever.
            self.stats["unreadable"] += 1
            self.log.exception("telegram update could not be converted", extra={"update_id": update.update_id})
            return
        try:
            if converted.skipped:
                self.stats[f"skipped:{converted.skipped}"] += 1
                if converted.dropped:
                    self.context.dropped(converted.dropped)
                self.log.info("telegram update not forwarded", extra={"reason": converted.skipped,
                                                                      "update_id": update.update_id})
            for inbound in converted.inbounds:
                await self.context.submit(await self._resolve_button(inbound))
        finally:
            if converted.callback_query_id is not None:
                await self._answer_callback(converted.callback_query_id)

    async def _resolve_button(self, inbound: Inbound) -> Inbound:
        content = inbound.content
        if not isinstance(content, InboundButton) or not content.button_id.startswith(CALLBACK_TOKEN_PREFIX):
            return inbound
        token = content.button_id.removeprefix(CALLBACK_TOKEN_PREFIX)
        stored = await self.context.kv.get(f"cb:{token}")
        if stored is not None:
            return msgspec.structs.replace(inbound, content=InboundButton(stored.decode(), content.text))
        # The keyboard outlived its token: the press still reaches the platform, as the button's text.
        self.stats["expired_button"] += 1
        self.log.warning("button token unknown or expired; forwarding the button text", extra={"token": token})
        return msgspec.structs.replace(inbound, content=InboundText(content.text))

    async def _answer_callback(self, query_id: str) -> None:
        try:
            await self.bot.answer_callback_query(query_id)
        except TelegramError as exc:
            # Too old or already answered (a redelivery): the client stopped spinning anyway.
            self.log.info("callback query not answered", extra={"reason": str(exc)})

    # ------------------------------------------------------------------ webhook mode

    def route_handlers(self) -> Sequence[Any]:
        if self.mode != "webhook":
            return ()

        async def telegram_webhook(request: WebhookRequest) -> tuple[int, bytes]:
            return await self.handle_webhook(request.header(SECRET_HEADER), request.body)

        return (webhook_route(WEBHOOK_PATH, telegram_webhook, max_body=self.context.max_body_bytes),)

    async def handle_webhook(self, secret: str | None, body: bytes) -> tuple[int, bytes]:
        """The webhook's answer as (status, JSON body): 2xx only once every message was taken over."""
        expected = self._secret
        if expected is None:
            return 503, error_body("unavailable", "the Telegram adapter is not started")
        if secret is None or not hmac.compare_digest(secret.encode(), expected.encode()):
            self.stats["webhook_unauthorized"] += 1
            return 401, error_body("unauthorized", "missing or wrong secret token")
        try:
            update = parse_update(body)
        except UnreadableUpdate as exc:
            data = _json_object(body)
            if data is None or not isinstance(data.get("update_id"), int):
                self.log.warning("webhook request is not a Telegram update")
                return 400, error_body("bad_request", "the body is not a Telegram update")
            self._unreadable(data, str(exc))
            return 200, _OK  # a 4xx/5xx would make Telegram hold back every later update while it retries
        try:
            await self.ingest(update)
        except Exception as exc:
            self.log.warning("telegram update not taken over; Telegram will redeliver",
                             extra={"update_id": update.update_id, "reason": str(exc)})
            return 500, error_body("not_taken_over", "try again later")
        return 200, _OK

    # ------------------------------------------------------------------ polling mode

    async def _poll_forever(self) -> None:
        delay = self.config.poll_retry_delay
        while True:
            try:
                updates = await self._fetch_updates()
            # Once the bot is initialized, do_api_request reports a refused token (401) as EndPointNotFound.
            except (InvalidToken, EndPointNotFound, Forbidden) as exc:
                self.log.error("telegram refused getUpdates", extra={"reason": str(exc)})
                await asyncio.sleep(self.config.poll_retry_max)
                continue
            except Conflict as exc:
                self.log.warning("getUpdates conflict: another poller or a webhook", extra={"reason": str(exc)})
                updates = None
            except Exception as exc:
                self.log.warning("getUpdates failed", extra={"reason": f"{type(exc).__name__}: {exc}"})
                updates = None
            if updates is not None and await self._process_batch(updates):
                delay = self.config.poll_retry_delay
            else:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.poll_retry_max)

    async def _fetch_updates(self) -> list[Update | _Unreadable]:
        """The next batch, each update parsed alone, so one unreadable update cannot stop polling for good."""
        timeout = self.config.poll_timeout
        return [_parse(item) for item in await self._get_updates(timeout, allowed_updates=list(ALLOWED_UPDATES))]

    async def _get_updates(self, timeout: int, **params: Any) -> list[dict[str, Any]]:
        """getUpdates from the current offset, as raw objects. It goes through PTB's request (its base URL,
        timeouts and error mapping) but not through `Bot.get_updates`, which would build PTB objects."""
        raw = await self.bot.do_api_request(
            "getUpdates",
            api_kwargs={"offset": self._offset, "timeout": timeout, **params},
            read_timeout=self.config.request_timeout + timeout,
        )
        if not isinstance(raw, list):
            raise TelegramError(f"getUpdates returned {type(raw).__name__}, not a list")
        # Without an update_id an item cannot even be skipped by the offset; Telegram never sends one.
        return [item for item in raw if isinstance(item, dict) and isinstance(item.get("update_id"), int)]

    async def _process_batch(self, updates: Sequence[Update | _Unreadable]) -> bool:
        """Ingest in order; the offset moves past an update only once all its messages were taken over.
        Returns False at the first update that was not, leaving the rest for the next getUpdates."""
        for update in updates:
            if isinstance(update, _Unreadable):
                self._unreadable(update.data, update.reason)
                self._offset = int(update.data["update_id"]) + 1
                continue
            try:
                await self.ingest(update)
            except Exception as exc:
                self.log.warning("telegram update not taken over; polling again from it",
                                 extra={"update_id": update.update_id, "reason": str(exc)})
                return False
            self._offset = update.update_id + 1
        return True

    def _unreadable(self, data: dict[str, Any], reason: str) -> None:
        # Retrying cannot help (the same bytes come back), and blocking would stop the whole bot.
        self.stats["unreadable"] += 1
        self.log.error("telegram update unreadable; skipped", extra={"update_id": data.get("update_id"),
                                                                     "fields": sorted(data), "reason": reason})

    async def _confirm_offset(self) -> None:
        """Tell Telegram what was taken over, so a restart does not fetch those updates again."""
        if self._app is None or self._offset is None:
            return
        try:
            await self._get_updates(0, limit=1)
        except Exception as exc:
            self.log.info("final getUpdates failed; some updates may be fetched again", extra={"reason": str(exc)})

    # ------------------------------------------------------------------ outbound and files

    async def do_send(self, message: Outbound) -> None:
        if self._sender is None:
            raise AdapterError("the Telegram adapter is not started")
        await self._sender.send(message)

    async def do_open_file(self, file_ref: str) -> FileDownload:
        if self._http is None:
            raise AdapterError("the Telegram adapter is not started")
        # The cloud Bot API refuses downloads over 20 MB; a local Bot API server (api_base_url) has no limit.
        limit = None if self.config.api_base_url else CLOUD_DOWNLOAD_LIMIT
        return await open_telegram_file(self.bot, self._http, file_ref, limit=limit)


def _parse(data: dict[str, Any]) -> Update | _Unreadable:
    try:
        return parse_update(data)
    except UnreadableUpdate as exc:
        return _Unreadable(data, str(exc))


def _json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None: to tell an unreadable update from a request that is no update."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    return data if isinstance(data, dict) else None
