"""`webhook_route` over a real server: the handler's answer, headers, size limit, method, a failing handler."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar, Router

from bridge import WebhookRequest, webhook_route
from bridge.app import _exception_handler
from bridge.testing.server import serve

seen: list[WebhookRequest] = []


async def echo(request: WebhookRequest) -> tuple[int, bytes]:
    seen.append(request)
    if request.body == b"boom":
        raise RuntimeError("a bug in the handler")
    return 202, b'{"got":%d}' % len(request.body)


@pytest.fixture
async def url() -> AsyncIterator[str]:
    seen.clear()
    router = Router(path="/channels/c1", route_handlers=[webhook_route("hook", echo, max_body=1000)])
    app = Litestar([router], exception_handlers={Exception: _exception_handler}, logging_config=None)
    async with serve(app) as server:
        yield f"{server.url}/channels/c1/hook"


async def post(url: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(url, **kwargs)


async def test_the_handler_gets_headers_and_body_and_its_answer_is_sent(url: str) -> None:
    answer = await post(url, content=b'{"update_id": 1}', headers={"X-Secret-Token": "abc"})
    assert answer.status_code == 202
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"got": 16}
    assert seen[0].body == b'{"update_id": 1}'
    assert seen[0].header("X-SECRET-TOKEN") == "abc" and seen[0].headers["x-secret-token"] == "abc"


async def test_a_chunked_body_is_read_whole(url: str) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"a" * 300, b"b" * 300, b"c" * 300):
            yield part

    answer = await post(url, content=chunks())
    assert answer.status_code == 202 and answer.json() == {"got": 900}


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_body_over_the_limit_is_413_and_never_reaches_the_handler(url: str, chunked: bool) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"x" * 400

    answer = await post(url, content=chunks() if chunked else b"x" * 1001)
    assert answer.status_code == 413
    assert answer.json()["error"] == "too_large"
    assert "1000 bytes" in answer.json()["desc"]
    assert seen == []


async def test_another_method_is_405(url: str) -> None:
    async with httpx.AsyncClient() as client:
        answer = await client.get(url)
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert answer.json()["error"] == "method_not_allowed"


async def test_a_failing_handler_is_a_json_500_without_a_traceback(url: str) -> None:
    answer = await post(url, content=b"boom")
    assert answer.status_code == 500
    assert answer.json() == {"error": "error", "desc": "internal error"}


def test_max_body_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_body"):
        webhook_route("x", echo, max_body=0)
