"""Logs: one JSON object per line, correlation ids from arrival to delivery, and never a configured secret."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar, get

from bridge.config import LoggingConfig
from bridge.logs import (
    ACCESS_FORMAT,
    ACCESS_LOGGER,
    BridgeLogHandler,
    JsonFormatter,
    RedactingFilter,
    Redactor,
    _timestamp,
    current_correlation_id,
    log_context,
    redact_also,
)
from bridge.testing.server import serve
from tests.ops.support import (
    BOT_TOKEN,
    PLATFORM_TOKEN,
    REPLY_TOKEN,
    SECRETS,
    URL_SECRET,
    OpsBridge,
    assert_no_secret,
    captured_logs,
    messages,
    ops_bridge,
)

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line decoded on its own; each must be a complete object with the fixed fields."""
    lines = [msgspec.json.decode(line) for line in text.splitlines()]
    for line in lines:
        assert isinstance(line, dict)
        assert RFC3339_UTC.match(line["ts"]), line
        assert {"level", "event", "logger"} <= line.keys(), line
    return lines


def test_redactor_masks_secrets_in_every_form() -> None:
    redact = Redactor(["s3cret/with space", "tok-12345678"])
    assert redact("a s3cret/with space b") == "a *** b"
    assert redact("url /x/s3cret%2Fwith%20space/y and q=s3cret%2Fwith+space") == "url /x/***/y and q=***"
    assert redact("GET /channels/web/tok-12345678/send_message") == "GET /channels/web/***/send_message"
    # Authorization values are masked whoever sent them, configured or not.
    assert redact("Authorization: Token attacker-guess") == "Authorization: ***"
    assert redact("{'authorization': 'Bearer abc.def'}") == "{'authorization': '***'}"
    headers = "[(b'authorization', b'Token xyz'), (b'host', b'h')]"
    assert redact(headers) == "[(b'authorization', b'***'), (b'host', b'h')]"
    assert redact('"Authorization":"Basic dXNlcjpwYXNz"') == '"Authorization":"***"'
    assert redact("sent Bearer abc123 upstream") == "sent Bearer *** upstream"
    assert redact("https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/getMe") == (
        "https://api.telegram.org/bot***/getMe"
    )
    assert redact("POST /connector/omnichannel/omnichannel_message/unknown-token/bot_api_webhook") == (
        "POST /connector/omnichannel/omnichannel_message/***/bot_api_webhook"
    )
    assert redact("GET /files/v1.eyJjIjoid2ViIn0.c2lnbmF0dXJl HTTP/1.1") == "GET /files/*** HTTP/1.1"
    assert redact("nothing to hide here") == "nothing to hide here"
    assert Redactor([])("Token text stays") == "Token text stays"
    # Any case of the header names and of the scheme word.
    assert redact("PROXY-AUTHORIZATION: x y") == "PROXY-AUTHORIZATION: ***"
    assert redact("x-telegram-bot-api-secret-token=abc") == "x-telegram-bot-api-secret-token=***"
    assert redact("sent BEARER abc123") == "sent BEARER ***"
    # A secret learnt after start is masked from then on, also in a text seen clean before.
    assert redact("key late-secret-42 and tok-12345678") == "key late-secret-42 and ***"
    assert redact("key late-secret-42") == "key late-secret-42"
    redact.add(["late-secret-42"])
    assert redact("key late-secret-42") == "key ***"
    assert redact("key late-secret-42 and tok-12345678") == "key *** and ***"


def test_json_line_has_fields_context_extras_and_redacted_exception() -> None:
    log = logging.getLogger("tests.ops.json")
    with captured_logs(SECRETS) as stream:
        with log_context(correlation_id="corr-1", channel="web"):
            log.info("sending %s to %s", "hello", f"/bot{BOT_TOKEN}/send", extra={"chat_id": 7, "url": URL_SECRET,
                                                                                  "nested": {"t": [REPLY_TOKEN]}})
            try:
                try:
                    raise ValueError(f"upstream said: bad token {PLATFORM_TOKEN}")
                except ValueError as inner:
                    raise RuntimeError(f"delivery failed with {BOT_TOKEN}") from inner
            except RuntimeError:
                log.exception("delivery of %s failed", REPLY_TOKEN, extra={"channel": "explicit"})
        log.warning("outside any context")
    text = stream.getvalue()
    assert_no_secret(text)
    first, failed, outside = json_lines(text)
    assert first["event"] == "sending hello to /bot***/send"
    assert (first["level"], first["logger"]) == ("info", "tests.ops.json")
    assert (first["correlation_id"], first["channel"], first["chat_id"]) == ("corr-1", "web", 7)
    assert first["url"] == "***" and first["nested"] == {"t": ["***"]}
    assert failed["level"] == "error" and failed["event"] == "delivery of *** failed"
    assert failed["channel"] == "explicit", "an explicit extra wins over the context"
    assert "Traceback" in failed["exception"]
    assert "ValueError: upstream said: bad token ***" in failed["exception"]
    assert "RuntimeError: delivery failed with ***" in failed["exception"]
    assert "correlation_id" not in outside


def test_log_contexts_nest_leave_out_none_and_are_undone_on_an_error() -> None:
    log = logging.getLogger("tests.ops.nested")
    with captured_logs(SECRETS) as stream:
        with log_context(correlation_id="outer", channel="web"):
            with pytest.raises(KeyError), log_context(correlation_id="inner", chat_id=None, direction="inbound"):
                assert current_correlation_id() == "inner"
                log.info("inside")
                raise KeyError("boom")
            log.info("back outside")
        assert current_correlation_id() is None
    inside, outside = json_lines(stream.getvalue())
    assert (inside["correlation_id"], inside["channel"], inside["direction"]) == ("inner", "web", "inbound")
    assert "chat_id" not in inside
    assert (outside["correlation_id"], outside["channel"]) == ("outer", "web") and "direction" not in outside


def test_console_format_is_for_people_and_redacted() -> None:
    with captured_logs(SECRETS, log_format="console") as stream:
        with log_context(correlation_id="corr-2"):
            logging.getLogger("tests.ops.console").warning("token %s refused", BOT_TOKEN, extra={"chat_id": 3})
    (line,) = stream.getvalue().splitlines()
    assert re.match(r"^\S+Z WARNING tests\.ops\.console: token \*\*\* refused  ", line), line
    assert "chat_id=3" in line and "correlation_id=corr-2" in line


def test_level_filters_lines() -> None:
    with captured_logs(SECRETS, level="WARNING") as stream:
        logging.getLogger("tests.ops.level").info("not shown")
        logging.getLogger("tests.ops.level").warning("shown")
    assert [line["event"] for line in json_lines(stream.getvalue())] == ["shown"]


def test_a_secret_learned_at_start_is_masked_from_then_on() -> None:
    generated = "generated-signing-key-Zx81"
    with captured_logs(SECRETS) as stream:
        redact_also([generated])
        logging.getLogger("tests.ops.late").warning("key is %s", generated)
    assert_no_secret(stream.getvalue(), (generated,))


@pytest.fixture
async def ops(tmp_path: Any) -> AsyncIterator[OpsBridge]:
    async with ops_bridge(f"sqlite:///{tmp_path}/bridge.db") as running:
        yield running


async def test_end_to_end_and_fault_logs_are_json_and_hold_no_secret(ops: OpsBridge) -> None:
    # A delivered round trip; the messenger's first send fails with its token in the error text.
    await ops.visitor_says("c-1", "m-1", "hello")
    await ops.until(lambda s: messages(s, "outbound", "delivered") == 1)
    # The platform fails once, then takes the message; the agent's long answer is sent in three parts.
    ops.emulator.add_fault(status=503, count=1)
    await ops.visitor_says("c-2", "m-1", "long")
    await ops.until(lambda s: messages(s, "outbound", "delivered") == 4)
    async with httpx.AsyncClient(base_url=ops.url) as client:
        # An adapter route failing with its token in the exception text: a 500 and a logged traceback.
        assert (await client.get("/channels/web/boom")).status_code == 500
        # A wrong Authorization header and a secret-URL call that is no send_message.
        r = await client.post("/channels/web/send_message", json={}, headers={"Authorization": "Token guessed-123"})
        assert r.status_code == 401
        assert (await client.post(f"/channels/web/{URL_SECRET}/close_chat", json={})).status_code == 200
    lines = json_lines(ops.logs.getvalue())
    assert_no_secret(ops.logs.getvalue(), (*SECRETS, "guessed-123"))

    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    secret_url_calls = [line for line in access if line["path"] == "/channels/web/***/send_message"]
    assert len(secret_url_calls) == 2, "the agent's two replies, each on the secret URL"
    assert all(line["method"] == "POST" and line["status"] == 200 for line in secret_url_calls)
    assert any(line["path"] == "/channels/web/***/close_chat" for line in access)

    (boom,) = [line for line in lines if line["event"] == "unhandled error in a request"]
    assert "RuntimeError: the messenger refused token ***" in boom["exception"]

    # One correlation id follows the first message's reply through its failed and its successful send.
    sends = [line for line in lines if line["event"] == "sending to the messenger"]
    assert len(sends) == 5
    first_reply = {line["correlation_id"] for line in sends[:2]}
    assert len(first_reply) == 1
    (retry,) = [line for line in lines if line["event"].startswith("retrying outbound item")]
    assert "bot***" in retry["event"]
    assert retry["correlation_id"] in first_reply
    assert (retry["channel"], retry["direction"], retry["message_id"]) == ("web", "outbound", sends[0]["message_id"])
    assert retry["chat_id"] == sends[0]["chat_id"]
    # The parts of the second reply share theirs, which is another.
    second_reply = {line["correlation_id"] for line in sends[2:]}
    assert len(second_reply) == 1 and second_reply != first_reply
    assert len({line["message_id"] for line in sends[2:]}) == 3
    for line in sends:
        assert line["channel"] == "web" and line["direction"] == "outbound"
        assert isinstance(line["chat_id"], int) and line["message_id"]

    # The inbound message that met the fault: the platform client's line and the retry share one id.
    platform = [line for line in lines if line["logger"] == "bridge.platform" and "not delivered" in line["event"]]
    (inbound_retry,) = [line for line in lines if line["event"].startswith("retrying inbound item")]
    assert len(platform) == 1 and platform[0]["correlation_id"] == inbound_retry["correlation_id"]
    assert all(platform[0][key] == inbound_retry[key] for key in ("channel", "direction", "chat_id", "message_id"))
    assert platform[0]["direction"] == "inbound" and "/omnichannel_message/***/" in platform[0]["event"]
    assert PLATFORM_TOKEN not in str(platform)


@pytest.mark.parametrize("created", [1_750_000_000.0, 1_750_000_000.0004999, 1_750_000_000.9995, 1_750_000_000.9999996,
                                     1_750_000_001.123456, 1_761_955_199.999])
def test_json_timestamps_match_the_plain_rendering(created: float) -> None:
    formatter = JsonFormatter()
    formatter._ts(created - 0.5)  # a second remembered from an earlier line must not leak into this one
    assert formatter._ts(created) == _timestamp(created)


@pytest.mark.parametrize("access_log", [True, False])
async def test_access_lines_follow_logging_access_log(access_log: bool) -> None:
    @get("/ping")
    async def ping() -> str:
        return "pong"

    settings = LoggingConfig(access_log=access_log)
    with captured_logs(SECRETS) as stream:
        async with serve(Litestar([ping], logging_config=None), logging=settings) as server:
            async with httpx.AsyncClient() as client:
                assert (await client.get(f"{server.url}/ping")).text == "pong"
    access = [line for line in json_lines(stream.getvalue()) if line["logger"] == "uvicorn.access"]
    assert [(line["method"], line["path"], line["status"]) for line in access] == (
        [("GET", "/ping", 200)] if access_log else []
    )


@pytest.mark.parametrize("log_format", ["json", "console"])
@pytest.mark.parametrize(
    "args",
    [
        ("127.0.0.1:5555", "POST", "/channels/tg/telegram/webhook", "1.1", 200),
        ("10.0.0.7:40000", "POST", f"/channels/web/{URL_SECRET}/send_message", "1.1", 200),
        ("[::1]:8080", "GET", f"/metrics?token={BOT_TOKEN}", "1.0", 404),
        ("", "PUT", '/quote"and\\slash', "1.1", 500),
    ],
)
def test_an_access_line_written_directly_is_the_line_the_record_becomes(log_format: str, args: tuple[Any, ...]) -> None:
    with captured_logs(SECRETS, log_format=log_format) as stream:
        (handler,) = [h for h in logging.getLogger().handlers if isinstance(h, BridgeLogHandler)]
        assert handler.write_access(*args)
        logging.getLogger(ACCESS_LOGGER).info(ACCESS_FORMAT, *args)  # the general way, as uvicorn logs
    direct, general = stream.getvalue().splitlines()
    assert_no_secret(direct)
    if log_format == "json":
        direct_line, general_line = json.loads(direct), json.loads(general)
        assert direct_line.pop("ts") <= general_line.pop("ts")
        assert direct_line == general_line
    else:  # the same after the time stamp
        assert direct.split(" ", 1)[1] == general.split(" ", 1)[1]


def test_an_access_line_takes_the_general_way_when_it_needs_more() -> None:
    args = ("127.0.0.1:5555", "GET", "/healthz", "1.1", 200)
    with captured_logs(SECRETS) as stream:
        (handler,) = [h for h in logging.getLogger().handlers if isinstance(h, BridgeLogHandler)]
        with log_context(correlation_id="c-1"):  # a log context adds fields
            assert not handler.write_access(*args)
        handler.setLevel(logging.WARNING)  # the handler takes no INFO lines
        assert not handler.write_access(*args)
        handler.setLevel(logging.NOTSET)
        handler.addFilter(logging.Filter("bridge"))  # a filter of someone else's
        assert not handler.write_access(*args)
    assert stream.getvalue() == ""
    redacting = RedactingFilter(Redactor(SECRETS))
    assert redacting.access_fields(*args) == ('127.0.0.1:5555 - "GET /healthz HTTP/1.1" 200', {
        "client": "127.0.0.1:5555", "method": "GET", "path": "/healthz", "status": 200})


def test_logging_skips_the_record_fields_no_format_shows() -> None:
    with captured_logs(SECRETS) as stream:
        logging.getLogger("uvicorn.access").info(ACCESS_FORMAT, "127.0.0.1:1", "GET", "/healthz", "1.1", 200)
        (line,) = json_lines(stream.getvalue())
        assert line["path"] == "/healthz"
        # No caller lookup (the stack walk cost a quarter of a line's CPU) and no thread or process names:
        # no format prints them.
        records: list[logging.LogRecord] = []
        collect = logging.Handler()
        collect.emit = records.append  # type: ignore[method-assign]
        logger = logging.getLogger("bridge.test-record-fields")
        logger.addHandler(collect)
        try:
            logger.warning("look")
        finally:
            logger.removeHandler(collect)
        (record,) = records
        assert (record.pathname, record.lineno, record.funcName) == ("(unknown file)", 0, "(unknown function)")
        assert record.threadName is None and record.processName is None
