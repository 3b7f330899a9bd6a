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

aiohttp (not httpx) on purpose: this is the hot path, one pooled session per app costs ~0.2 ms CPU per POST.
"""

from __future__ import annotations

import email.utils
import logging
import re
import time
from collections.abc import Mapping
from types import TracebackType

import aiohttp
import msgspec

from bridge.handoff import Delivered, Outcome, Permanent, Retry
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
_JSON = {"Content-Type": "application/json"}
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
        location = headers.get("Location", "")
        where = f" to {location}" if location else ""
        reason = f"platform {status}: redirect{where} not followed; set webhook_url to the final address"
        return Permanent(redact(reason, webhook_url))
    reason = redact(f"platform {status}: {detail}", webhook_url)
    if status in _PERMANENT_DOCUMENTED:
        return Permanent(reason)
    if status in _RETRYABLE_4XX or status >= 500:
        return Retry(reason, retry_after=parse_retry_after(headers.get("Retry-After")))
    return Permanent(reason)


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < _MAX_BODY_BYTES:
        chunk = await response.content.read(_MAX_BODY_BYTES - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _format_seconds(seconds: float) -> str:
    return f"{seconds:g}s"


class PlatformClient:
    """POSTs `new_message` payloads to channel webhook URLs over one pooled aiohttp session.

    One instance per app: create it, `await start()` (or `async with`), share it between all channels and
    delivery workers, `await close()` on shutdown. Never raises for an answer or a network failure: every
    attempt ends in an `Outcome`.
    """

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        limit: int = 100,
        limit_per_host: int = 0,
    ) -> None:
        if timeout <= 0 or connect_timeout <= 0:
            raise ValueError("timeout and connect_timeout must be positive")
        if limit < 0 or limit_per_host < 0:
            raise ValueError("limit and limit_per_host must be >= 0 (0 = unlimited)")
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float, float], aiohttp.ClientTimeout] = {}

    async def start(self) -> None:
        if self._session is not None:
            return
        connector = aiohttp.TCPConnector(limit=self._limit, limit_per_host=self._limit_per_host)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=self.connect_timeout),
            headers={"User-Agent": _USER_AGENT},
            raise_for_status=False,
        )

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

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
        session = self._session
        if session is None:
            raise RuntimeError("PlatformClient is not started: await start() or use `async with` first")
        total = self.timeout if timeout is None else timeout
        connect = self.connect_timeout if connect_timeout is None else connect_timeout
        client_timeout = self._timeouts.get((total, connect))
        if client_timeout is None:
            client_timeout = self._timeouts[(total, connect)] = aiohttp.ClientTimeout(total=total, sock_connect=connect)
        try:
            async with session.post(
                webhook_url, data=body, headers=_JSON, allow_redirects=False, timeout=client_timeout
            ) as response:
                status = response.status
                headers = response.headers
                try:
                    answer = await _read_capped(response)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    if 200 <= status < 300:
                        # The status line came after the platform took the message; a lost body
                        # changes nothing.
                        logger.debug(
                            "platform body unreadable after %s (%s): %r", status, redact_url(webhook_url), exc
                        )
                        return Delivered()
                    raise
                outcome = classify_response(status, headers, answer, webhook_url)
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
            return self._log(Permanent(redact(f"invalid webhook URL: {exc}", webhook_url)), webhook_url)
        except aiohttp.ConnectionTimeoutError:
            reason = f"timeout after {_format_seconds(connect)} (connecting)"
            return self._log(Retry(reason), webhook_url)
        except TimeoutError:
            return self._log(Retry(f"timeout after {_format_seconds(total)}"), webhook_url)
        except aiohttp.ClientConnectionError as exc:
            reason = redact(f"connection error: {_describe(exc)}", webhook_url)
            return self._log(Retry(reason), webhook_url)
        except aiohttp.ClientError as exc:
            reason = redact(f"HTTP error: {_describe(exc)}", webhook_url)
            return self._log(Retry(reason), webhook_url)
        return self._log(outcome, webhook_url)

    @staticmethod
    def _log(outcome: Outcome, webhook_url: str) -> Outcome:
        # The URL is redacted only for a line that is written: most deliveries log nothing at INFO.
        if not isinstance(outcome, Delivered):
            logger.info("new_message to %s not delivered: %s", redact_url(webhook_url), _outcome_text(outcome))
        elif logger.isEnabledFor(logging.DEBUG):
            logger.debug("new_message delivered to %s", redact_url(webhook_url))
        return outcome


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _outcome_text(outcome: Retry | Permanent) -> str:
    if isinstance(outcome, Retry):
        after = f" (retry after {outcome.retry_after:g}s)" if outcome.retry_after is not None else ""
        return f"retry: {outcome.reason}{after}"
    return f"permanent: {outcome.reason}"
