"""A fake Telegram Bot API server on loopback, for tests of anything that talks to Telegram.

It is a real HTTP server (aiohttp) speaking the Bot API's wire format, so the code under test runs unchanged
with its real HTTP client: point python-telegram-bot's `base_url` at `tg.base_url` and `base_file_url` at
`tg.base_file_url`. Tests push updates (served by `getUpdates`, or POSTed to the registered webhook with its
secret), register files for `getFile` and downloads, inspect every call, and make any method fail on demand.

    async with run_fake_telegram() as tg:
        tg.push_update(tg.message_update(chat_id=42, text="hi"))
        tg.fail("sendMessage", chat_id=42, error_code=429, retry_after=3)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web

__all__ = ["DEFAULT_TOKEN", "Call", "Failure", "FakeTelegram", "Sent", "run_fake_telegram"]

DEFAULT_TOKEN = "123456789:TEST-fake-telegram-token_abcdef"
# Parameters Telegram clients send as plain strings; everything else arrives JSON-encoded in form bodies.
_STRING_PARAMS = frozenset(
    {"text", "caption", "photo", "video", "audio", "document", "animation", "voice", "video_note", "sticker",
     "file_id", "url", "secret_token", "callback_query_id", "parse_mode", "inline_message_id", "emoji"}
)
_MEDIA = {"sendPhoto": "photo", "sendVideo": "video", "sendAudio": "audio", "sendDocument": "document",
          "sendAnimation": "animation", "sendVoice": "voice", "sendSticker": "sticker"}
_DEFAULT_DESCRIPTIONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden: bot was blocked by the user",
                         404: "Not Found", 409: "Conflict", 500: "Internal Server Error", 502: "Bad Gateway"}


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    params: dict[str, Any]

    @property
    def chat_id(self) -> Any:
        return self.params.get("chat_id")


@dataclass(frozen=True, slots=True)
class Sent:
    """A message the bot sent: as Telegram answered it (`message`, keyboards attached later included) and the
    request's parameters (`params`)."""

    message: dict[str, Any]
    params: dict[str, Any]


@dataclass(slots=True)
class Failure:
    """Answer `method` (any when None) for `chat_id` (any when None) with an error, `times` times (None:
    until `clear_failures`), after letting the first `after` matching calls through."""

    method: str | None
    chat_id: int | str | None
    error_code: int
    description: str
    retry_after: int | None = None
    migrate_to_chat_id: int | None = None
    times: int | None = 1
    after: int = 0

    def matches(self, method: str, chat_id: Any) -> bool:
        if self.method is not None and self.method != method:
            return False
        return self.chat_id is None or str(self.chat_id) == str(chat_id)


@dataclass(slots=True)
class _File:
    file_id: str
    content: bytes
    file_path: str
    file_unique_id: str
    downloadable: bool = True


@dataclass
class FakeTelegram:
    token: str = DEFAULT_TOKEN
    url: str = ""
    bot_user: dict[str, Any] = field(
        default_factory=lambda: {"id": 123456789, "is_bot": True, "first_name": "Fake Bot", "username": "fake_bot"}
    )
    # Files larger than this get Telegram's "file is too big" from getFile, as the cloud Bot API does.
    max_download_size: int = 20 * 1024 * 1024
    # The longest a getUpdates long poll is held, whatever timeout the client asks for.
    max_long_poll: float = 5.0
    calls: list[Call] = field(default_factory=list)
    webhook_url: str | None = None
    webhook_secret: str | None = None
    confirmed_offset: int = 0
    failures: list[Failure] = field(default_factory=list)
    _updates: list[dict[str, Any]] = field(default_factory=list)
    _files: dict[str, _File] = field(default_factory=dict)
    _sent: dict[tuple[int, int], Sent] = field(default_factory=dict)  # by (chat id, message id)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _tick: asyncio.Event = field(default_factory=asyncio.Event)
    _closing: bool = False

    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    def adapter_settings(self, **overrides: Any) -> dict[str, Any]:
        """The Telegram adapter's keys for this fake: fast polling, send limits too high to matter."""
        return {
            "bot_token": self.token, "api_base_url": self.url, "poll_timeout": 1, "poll_retry_delay": 0.02,
            "poll_retry_max": 0.1, "rate_limits": {"private_per_second": 1000.0, "private_burst": 1000,
                                                   "group_burst": 1000},
            **overrides,
        }

    # ------------------------------------------------------------------ what tests set up

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue an update for `getUpdates`; returns its `update_id` (assigned when missing)."""
        update.setdefault("update_id", next(self._ids))
        self._updates.append(update)
        self._notify()
        return int(update["update_id"])

    def add_file(self, file_id: str, content: bytes, *, file_path: str | None = None,
                 downloadable: bool = True) -> None:
        """Serve `content` for `getFile(file_id)` and its download; `downloadable=False` makes the download
        404, as when Telegram's storage lost the file after `getFile` answered."""
        path = file_path or f"documents/{file_id}.bin"
        self._files[file_id] = _File(file_id, content, path, f"u-{file_id}", downloadable)

    def fail(
        self,
        method: str | None = None,
        *,
        chat_id: int | str | None = None,
        error_code: int = 500,
        description: str | None = None,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
        times: int | None = 1,
        after: int = 0,
    ) -> None:
        if description is None:
            description = (f"Too Many Requests: retry after {retry_after}" if error_code == 429
                           else _DEFAULT_DESCRIPTIONS.get(error_code, "Error"))
        self.failures.append(
            Failure(method, chat_id, error_code, description, retry_after, migrate_to_chat_id, times, after)
        )

    def clear_failures(self) -> None:
        self.failures.clear()

    # ------------------------------------------------------------------ what tests inspect

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """A message the bot sent, as it is now (with any keyboard attached later)."""
        sent = self._sent.get((chat_id, message_id))
        return sent.message if sent else None

    def sent_to(self, chat_id: int) -> list[dict[str, Any]]:
        return [sent.message for sent in self.sent_messages() if sent.message["chat"]["id"] == chat_id]

    def sent_messages(self) -> list[Sent]:
        """Every message the bot sent, in order, with the request that sent it (a file's URL is there)."""
        return sorted(self._sent.values(), key=lambda sent: int(sent.message["message_id"]))

    async def wait_for(self, method: str, count: int = 1, *, timeout: float = 5.0) -> list[Call]:
        """Wait until `method` was called at least `count` times; returns those calls."""
        await self._wait_until(lambda: len(self.calls_to(method)) >= count, timeout)
        return self.calls_to(method)

    async def wait_confirmed(self, offset: int, *, timeout: float = 5.0) -> None:
        """Wait until a getUpdates call confirmed every update below `offset`."""
        await self._wait_until(lambda: self.confirmed_offset >= offset, timeout)

    async def post_webhook(self, update: dict[str, Any], *, secret: str | None = None) -> httpx.Response:
        """POST `update` to the registered webhook as Telegram does (with the secret header, unless a
        different `secret` is given to test a forged request)."""
        if self.webhook_url is None:
            raise RuntimeError("no webhook is set")
        update.setdefault("update_id", next(self._ids))
        headers = {"Content-Type": "application/json"}
        token = self.webhook_secret if secret is None else secret
        if token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = token
        async with httpx.AsyncClient(timeout=10.0) as client:
            return await client.post(self.webhook_url, content=json.dumps(update).encode(), headers=headers)

    # ------------------------------------------------------------------ update builders

    def user(self, user_id: int, first_name: str = "Ann", last_name: str | None = None,
             username: str | None = None) -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        return user

    def chat(self, chat_id: int) -> dict[str, Any]:
        if chat_id < 0:
            return {"id": chat_id, "type": "supergroup", "title": f"Group {-chat_id}"}
        return {"id": chat_id, "type": "private", "first_name": "Ann"}

    def message_update(self, chat_id: int, *, text: str | None = None, from_user: dict[str, Any] | None = None,
                       message_id: int | None = None, edit_date: int | None = None,
                       **content: Any) -> dict[str, Any]:
        """An update carrying a message (`edited_message` when `edit_date` is given); `content` adds fields
        such as `photo=[...]`, `caption="..."`, `contact={...}`."""
        message: dict[str, Any] = {
            "message_id": message_id if message_id is not None else next(self._ids),
            "date": int(time.time()),
            "chat": self.chat(chat_id),
            "from": from_user or self.user(chat_id if chat_id > 0 else 1000),
        }
        if text is not None:
            message["text"] = text
        message.update(content)
        if edit_date is not None:
            message["edit_date"] = edit_date
            return {"edited_message": message}
        return {"message": message}

    def callback_update(self, chat_id: int, data: str, *, message: dict[str, Any] | None = None,
                        from_user: dict[str, Any] | None = None, query_id: str | None = None) -> dict[str, Any]:
        """A button press on `message` (a message the bot sent, e.g. from `sent_to`)."""
        msg = message or {"message_id": next(self._ids), "date": int(time.time()), "chat": self.chat(chat_id),
                          "text": "menu"}
        return {"callback_query": {"id": query_id or f"q{next(self._ids)}", "chat_instance": "ci",
                                   "from": from_user or self.user(chat_id if chat_id > 0 else 1000),
                                   "message": msg, "data": data}}

    # ------------------------------------------------------------------ the server side

    def _notify(self) -> None:
        self._tick.set()
        self._tick = asyncio.Event()

    async def _wait_until(self, condition: Callable[[], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                await self._tick.wait()

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        params = await _params(request)
        self.calls.append(Call(method, params))
        self._notify()
        for failure in self.failures:
            if failure.matches(method, params.get("chat_id")):
                if failure.after > 0:
                    failure.after -= 1
                    continue
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        self.failures.remove(failure)
                extra = {k: v for k, v in (("retry_after", failure.retry_after),
                                           ("migrate_to_chat_id", failure.migrate_to_chat_id)) if v is not None}
                return _error(failure.error_code, failure.description, extra)
        handler = getattr(self, f"_api_{method}", None)
        if method in _MEDIA:
            return _ok(self._store_message(params, {_MEDIA[method]: self._media(method, params)}))
        if handler is None:
            return _error(404, "Not Found")
        result: web.Response = await handler(params)
        return result

    def _media(self, method: str, params: dict[str, Any]) -> Any:
        """A minimal but valid Bot API object for what `method` sent."""
        file: dict[str, Any] = {"file_id": f"sent-{next(self._ids)}", "file_unique_id": f"su-{next(self._ids)}"}
        kind = _MEDIA[method]
        if kind == "photo":
            return [dict(file, width=1, height=1)]
        if kind in ("video", "animation"):
            file.update(width=1, height=1, duration=1)
        elif kind in ("audio", "voice"):
            file.update(duration=1)
        elif kind == "sticker":
            file.update(type="regular", width=1, height=1, is_animated=False, is_video=False)
        return file

    def _store_message(self, params: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        message = {"message_id": next(self._ids), "date": int(time.time()), "chat": self.chat(chat_id),
                   "from": self.bot_user, **content}
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        self._sent[(chat_id, message["message_id"])] = Sent(message, params)
        return message

    async def _api_getMe(self, params: dict[str, Any]) -> web.Response:
        return _ok(self.bot_user)

    async def _api_setWebhook(self, params: dict[str, Any]) -> web.Response:
        self.webhook_url = params["url"] or None
        self.webhook_secret = params.get("secret_token")
        return _ok(True)

    async def _api_deleteWebhook(self, params: dict[str, Any]) -> web.Response:
        self.webhook_url = self.webhook_secret = None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return _ok(True)

    async def _api_getUpdates(self, params: dict[str, Any]) -> web.Response:
        if self.webhook_url:
            return _error(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = int(params.get("offset") or 0)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            self.confirmed_offset = max(self.confirmed_offset, offset)
            self._notify()
        wait = min(float(params.get("timeout") or 0), self.max_long_poll)
        if not self._updates and wait > 0:
            with contextlib.suppress(TimeoutError):
                await self._wait_until(lambda: bool(self._updates) or self._closing, wait)
        limit = int(params.get("limit") or 100)
        return _ok(self._updates[:limit])

    async def _api_sendMessage(self, params: dict[str, Any]) -> web.Response:
        if not str(params.get("text", "")).strip():
            return _error(400, "Bad Request: message text is empty")
        return _ok(self._store_message(params, {"text": params["text"]}))

    async def _api_editMessageReplyMarkup(self, params: dict[str, Any]) -> web.Response:
        message = self.message(int(params["chat_id"]), int(params["message_id"]))
        if message is None:
            return _error(400, "Bad Request: message to edit not found")
        if message.get("reply_markup") == params.get("reply_markup"):
            return _error(400, "Bad Request: message is not modified")
        message["reply_markup"] = params.get("reply_markup")
        return _ok(message)

    async def _api_answerCallbackQuery(self, params: dict[str, Any]) -> web.Response:
        return _ok(True)

    async def _api_getFile(self, params: dict[str, Any]) -> web.Response:
        file = self._files.get(str(params.get("file_id")))
        if file is None:
            return _error(400, "Bad Request: invalid file_id")
        if len(file.content) > self.max_download_size:
            return _error(400, "Bad Request: file is too big")
        return _ok({"file_id": file.file_id, "file_unique_id": file.file_unique_id,
                    "file_size": len(file.content), "file_path": file.file_path})

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        file = next((f for f in self._files.values() if f.file_path == path and f.downloadable), None)
        if file is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        return web.Response(body=file.content, content_type="application/octet-stream")


async def _params(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        body = await request.json() if request.can_read_body else {}
        return dict(body)
    form = await request.post() if request.can_read_body else {}
    params: dict[str, Any] = dict(request.query)
    for key, value in form.items():
        if isinstance(value, web.FileField):  # an uploaded file
            params[key] = {"filename": value.filename, "content": value.file.read()}
        elif isinstance(value, bytes | bytearray):
            params[key] = bytes(value)
        elif key in _STRING_PARAMS:
            params[key] = value
        else:
            try:
                params[key] = json.loads(value)
            except ValueError:
                params[key] = value
    return params


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(code: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=code)


@contextlib.asynccontextmanager
async def run_fake_telegram(*, token: str = DEFAULT_TOKEN, host: str = "127.0.0.1") -> AsyncIterator[FakeTelegram]:
    """Serve a fresh `FakeTelegram` on a free loopback port until the block exits."""
    fake = FakeTelegram(token=token)
    app = web.Application()
    app.router.add_route("*", "/bot{token}/{method}", fake._handle_api)
    app.router.add_get("/file/bot{token}/{path:.+}", fake._handle_file)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, 0)
        await site.start()
        port = runner.addresses[0][1]
        fake.url = f"http://{host}:{port}"
        yield fake
    finally:
        fake._closing = True  # release held long polls, so the server stops at once
        fake._notify()
        await runner.cleanup()
