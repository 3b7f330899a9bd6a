"""The one client of the platform's inbound endpoint: POST `new_message`, classify the answer.

The platform answers the *taking over* of a message, never its processing (the agent replies later through
`/send_message`), so the answer maps directly onto an `Outcome` for the delivery layer:

- 2xx, whatever the body (empty, not JSON, even with an `"error"` key) → `Delivered`. A 200 with an `"error"`
  key is logged as a warning but stays delivered: the seed documents 200 as the answer to an *ignored*
  event/kind, so resending the same payload would get the same 200 forever (and the bridge never builds one).
- 400, 404 → `Permanent`: inactive channel, wrong token, missing parameter, wrong URL. Resending the same
  payload will not heal it soon.
- 408, 425, 429 → `Retry`, honouring `Retry-After`: the request was not processed and the platform (or a
  proxy in front of it) asks us to come back later.
- any other 4xx (401, 403, 413, ...) → `Permanent`: the platform documents none of them; they come from a
  proxy or a misconfiguration (credentials, body size) that retrying cannot fix. A dead-lettered item can be
  replayed once the operator has fixed it.
- 3xx → `Permanent`: redirects are not followed (a POST turned into a GET would be silently lost), so
  `webhook_url` must point at the final address.
- 5xx → `Retry`, honouring `Retry-After` (a 503 often sends one).
- timeout → `Retry("timeout after Xs")`; connection error → `Retry("connection error: ...")`;
  an unusable webhook URL → `Permanent`.

The webhook URL embeds the channel's secret token (`.../omnichannel_message/{token}/bot_api_webhook`), so
every reason and log line goes through `redact()` first.

The HTTP exchange itself is `bridge.http1`, a small HTTP/1.1 client: this is the hot path, and it costs about a
third of aiohttp's CPU per POST (and a tenth of httpx's).
"""

from __future__ import annotations

import email.utils
import logging
import re
import time
from collections.abc import Mapping
from types import TracebackType

import msgspec

from bridge.handoff import Delivered, Outcome, Permanent, Retry
from bridge.http1 import ConnectionFailed, ConnectTimeout, Http1Client, HttpError, InvalidUrl
from bridge.protocol import NewMessage, encode

__all__ = [
    "PlatformClient",
    "classify_response",
    "parse_retry_after",
    "redact",
    "redact_url",
]

logger = logging.getLogger("bridge.platform")

_TOKEN_IN_PATH = re.compile(r"(/omnichannel_message/)[^/?#\s\"']+")
_RETRYABLE_4XX = frozenset({408, 425, 429})
_PERMANENT_DOCUMENTED = frozenset({400, 404})
# How much of an answer body is read: enough for any error text, bounded so a misbehaving proxy cannot make us
# buffer megabytes per message.
_MAX_BODY_BYTES = 64 * 1024
_REASON_BODY_CHARS = 200
_USER_AGENT = "omnichannel-bridge"
_UNLIMITED = 1_000_000  # connections, when `limit` is 0
_MIN_BARE_TOKEN = 6


def redact_url(url: str) -> str:
    """The URL with the token segment after `/omnichannel_message/` replaced by `***`."""
    return _TOKEN_IN_PATH.sub(r"\1***", url)


def redact(text: str, webhook_url: str | None = None) -> str:
    """`text` with the webhook token removed wherever it appears: in a URL path, or on its own (an error page
    or exception message may echo it without the surrounding path).

    A bare token shorter than `_MIN_BARE_TOKEN` is only removed from URL paths: replacing every "ab" in a
    reason would garble it, and such a token is no secret anyway.
    """
    if webhook_url:
        match = _TOKEN_IN_PATH.search(webhook_url)
        if match:
            token = match.group(0)[len("/omnichannel_message/") :]
            if len(token) >= _MIN_BARE_TOKEN:
                text = text.replace(token, "***")
    return redact_url(text)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP-date; `None` when absent or unreadable.

    Returned as given (only clamped at 0): how long is too long is the delivery layer's decision.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds == float("inf"):  # NaN or infinity
        return None
    return max(0.0, seconds)


def _error_text(body: bytes) -> str | None:
    """`error` and `desc` from a JSON error body (`{"error": "<code>", "desc": "<human text>"}`)."""
    try:
        decoded = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    if not isinstance(decoded, dict):
        return None
    parts = [
        value if isinstance(value, str) else msgspec.json.encode(value).decode()
        for value in (decoded.get("error"), decoded.get("desc"))
        if value is not None and value != ""
    ]
    return ": ".join(parts) if parts else None


def _body_excerpt(body: bytes) -> str:
    text = " ".join(body.decode("utf-8", errors="replace").split())
    return text[:_REASON_BODY_CHARS]


def classify_response(status: int, headers: Mapping[str, str], body: bytes, webhook_url: str = "") -> Outcome:
    """Map one platform answer onto an `Outcome` (see the module docstring for the table).

    Pure, so the table can be tested row by row; `webhook_url` only serves redaction.
    """
    if 200 <= status < 300:
        error = _error_text(body)
        if error is not None:
            logger.warning(
                "platform answered %s with an error body, treated as delivered (%s): %s",
                status,
                redact_url(webhook_url),
                redact(error, webhook_url),
            )
        return Delivered()
    detail = _error_text(body)
    if detail is None:
        detail = _body_excerpt(body) or "(empty body)"
    if 300 <= status < 400:
        location = _header(headers, "Location") or ""
        where = f" to {location}" if location else ""
        reason = f"platform {status}: redirect{where} not followed; set webhook_url to the final address"
        return Permanent(redact(reason, webhook_url))
    reason = redact(f"platform {status}: {detail}", webhook_url)
    if status in _PERMANENT_DOCUMENTED:
        return Permanent(reason)
    if status in _RETRYABLE_4XX or status >= 500:
        return Retry(reason, retry_after=parse_retry_after(_header(headers, "Retry-After")))
    return Permanent(reason)


def _format_seconds(seconds: float) -> str:
    return f"{seconds:g}s"


class PlatformClient:
    """POSTs `new_message` payloads to channel webhook URLs over one pool of keep-alive connections.

    One instance per app: create it, `await start()` (or `async with`), share it between all channels and
    delivery workers, `await close()` on shutdown. Never raises for an answer or a network failure: every
    attempt ends in an `Outcome`.
    """

    def __init__(self, *, timeout: float = 10.0, connect_timeout: float = 5.0, limit: int = 100) -> None:
        if timeout <= 0 or connect_timeout <= 0:
            raise ValueError("timeout and connect_timeout must be positive")
        if limit < 0:
            raise ValueError("limit must be >= 0 (0 = unlimited)")
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._limit = limit or _UNLIMITED
        self._http: Http1Client | None = None

    async def start(self) -> None:
        if self._http is None:
            self._http = Http1Client(limit=self._limit, max_body=_MAX_BODY_BYTES, user_agent=_USER_AGENT)

    async def close(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.close()

    async def __aenter__(self) -> PlatformClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def post_new_message(
        self,
        webhook_url: str,
        payload: NewMessage,
        *,
        timeout: float | None = None,
        connect_timeout: float | None = None,
    ) -> Outcome:
        """Deliver one visitor message to the platform and say what became of it.

        `timeout` / `connect_timeout` override the client's own for this request (channels have their own
        settings but share the one pooled session).
        """
        return await self.post_json(webhook_url, encode(payload), timeout=timeout, connect_timeout=connect_timeout)

    async def post_json(
        self,
        webhook_url: str,
        body: bytes,
        *,
        timeout: float | None = None,
        connect_timeout: float | None = None,
    ) -> Outcome:
        """POST an already encoded JSON body to a webhook URL; the seam under `post_new_message`, public so an
        encoded payload (a replayed dead letter, a conformance test's raw bytes) goes through the same
        classification."""
        http = self._http
        if http is None:
            raise RuntimeError("PlatformClient is not started: await start() or use `async with` first")
        total = self.timeout if timeout is None else timeout
        connect = self.connect_timeout if connect_timeout is None else connect_timeout
        try:
            answer = await http.post(
                webhook_url, body, content_type="application/json", timeout=total, connect_timeout=connect
            )
        except InvalidUrl as exc:
            return self._log(Permanent(redact(f"invalid webhook URL: {exc}", webhook_url)), webhook_url)
        except ConnectTimeout:
            return self._log(Retry(f"timeout after {_format_seconds(connect)} (connecting)"), webhook_url)
        except TimeoutError:
            return self._log(Retry(f"timeout after {_format_seconds(total)}"), webhook_url)
        except ConnectionFailed as exc:
            return self._log(Retry(redact(f"connection error: {exc}", webhook_url)), webhook_url)
        except HttpError as exc:
            return self._log(Retry(redact(f"HTTP error: {exc}", webhook_url)), webhook_url)
        if answer.body_error is not None:
            if 200 <= answer.status < 300:
                # The status line came after the platform took the message; a lost body changes nothing.
                logger.debug("platform body unreadable after %s (%s): %s", answer.status, redact_url(webhook_url),
                             answer.body_error)
                return self._log(Delivered(), webhook_url)
            return self._log(Retry(redact(f"connection error: {answer.body_error}", webhook_url)), webhook_url)
        return self._log(classify_response(answer.status, answer.headers, answer.body, webhook_url), webhook_url)

    @staticmethod
    def _log(outcome: Outcome, webhook_url: str) -> Outcome:
        # The URL is redacted only for a line that is written: most deliveries log nothing at INFO.
        if not isinstance(outcome, Delivered):
            logger.info("new_message to %s not delivered: %s", redact_url(webhook_url), _outcome_text(outcome))
        elif logger.isEnabledFor(logging.DEBUG):
            logger.debug("new_message delivered to %s", redact_url(webhook_url))
        return outcome


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header whatever the case of its name in `headers`."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def _outcome_text(outcome: Retry | Permanent) -> str:
    if isinstance(outcome, Retry):
        after = f" (retry after {outcome.retry_after:g}s)" if outcome.retry_after is not None else ""
        return f"retry: {outcome.reason}{after}"
    return f"permanent: {outcome.reason}"
