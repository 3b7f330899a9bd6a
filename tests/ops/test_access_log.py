"""Access lines from `AccessLog` over a real server: one per request with uvicorn's text and fields, redacted,
a 500 for an app that fails before answering, none when turned off; written directly to the bridge's handler
when it is the root logger's only one, and as a record otherwise, with the same result."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from litestar import Litestar, get, post

from bridge.access_log import AccessLog, uvicorn_options
from bridge.config import LoggingConfig
from bridge.logs import BridgeLogHandler
from bridge.testing.server import serve
from tests.ops.support import SECRETS, URL_SECRET, assert_no_secret, captured_logs


@get("/ping")
async def ping() -> str:
    return "pong"


@post(f"/channels/web/{URL_SECRET}/send_message", status_code=200)
async def reply() -> dict[str, str]:
    return {"result": "ok"}


async def failing_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http" and scope["path"] == "/fail":
        raise RuntimeError("broken before answering")
    await app(scope, receive, send)


app = Litestar([ping, reply], logging_config=None)


@contextmanager
def only_the_bridge_handler() -> Iterator[list[str]]:
    """The root logger with the bridge's handler alone, as in `omnichannel-bridge run` (pytest adds its own);
    yields the names of the records made meanwhile."""
    root = logging.getLogger()
    saved, factory = root.handlers[:], logging.getLogRecordFactory()
    made: list[str] = []

    def counting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        made.append(record.name)
        return record

    root.handlers = [h for h in saved if isinstance(h, BridgeLogHandler)]
    logging.setLogRecordFactory(counting_factory)
    try:
        yield made
    finally:
        logging.setLogRecordFactory(factory)
        root.handlers = saved


def access_lines(text: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines()]
    return [line for line in lines if line["logger"] == "uvicorn.access"]


async def requests(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/ping", params={"a": "1"})).text == "pong"
        assert (await client.post(f"/channels/web/{URL_SECRET}/send_message")).status_code == 200
        assert (await client.get("/nowhere")).status_code == 404
        assert (await client.get("/fail")).status_code == 500


@pytest.mark.parametrize("direct", [True, False], ids=["bridge handler alone", "other handlers too"])
async def test_one_redacted_line_per_request(direct: bool) -> None:
    with captured_logs(SECRETS) as stream:
        async with serve(failing_app, logging=LoggingConfig()) as server:
            if direct:
                with only_the_bridge_handler() as records:
                    await requests(server.url)
                assert "uvicorn.access" not in records, "written without making records"
            else:
                await requests(server.url)
    text = stream.getvalue()
    assert_no_secret(text)
    lines = access_lines(text)
    assert [(line["method"], line["path"], line["status"]) for line in lines] == [
        ("GET", "/ping?a=1", 200),
        ("POST", "/channels/web/***/send_message", 200),
        ("GET", "/nowhere", 404),
        ("GET", "/fail", 500),
    ]
    first = lines[0]
    assert first["level"] == "info" and first["client"].startswith("127.0.0.1:")
    assert first["event"] == f'{first["client"]} - "GET /ping?a=1 HTTP/1.1" 200'


async def test_records_reach_other_handlers_when_the_bridge_handler_is_not_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with captured_logs(SECRETS), caplog.at_level(logging.INFO):
        async with serve(app, logging=LoggingConfig()) as server, httpx.AsyncClient() as client:
            await client.get(f"{server.url}/ping")
    (record,) = [r for r in caplog.records if r.name == "uvicorn.access"]
    assert record.args is None and record.getMessage().endswith('"GET /ping HTTP/1.1" 200')  # redacted


@pytest.mark.parametrize("level", ["INFO", "WARNING"])
def test_turned_off_by_the_config_or_the_level(level: str) -> None:
    assert not isinstance(uvicorn_options(LoggingConfig(access_log=False), app)["app"], AccessLog)
    options = uvicorn_options(LoggingConfig(level=level), app)
    assert isinstance(options["app"], AccessLog) and options["access_log"] is False
    with captured_logs(SECRETS, level=level) as stream:
        options["app"].write({"type": "http", "client": ("10.0.0.1", 5), "method": "GET", "path": "/x",
                              "raw_path": b"/x", "query_string": b"", "http_version": "1.1"}, 204)
    assert len(access_lines(stream.getvalue())) == (1 if level == "INFO" else 0)
