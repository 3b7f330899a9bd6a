"""`webhook_route` over a real server: the handler's answer, headers, size limit, method, a failing handler,
each mounted as a Litestar route and behind `WebhookFastPath` (which must answer exactly alike)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar, Router

from bridge import WebhookRequest, webhook_route
from bridge.app import _exception_handler
from bridge.testing.server import serve
from bridge.webhook import WebhookFastPath, webhook_endpoint

seen: list[WebhookRequest] = []
observed: list[tuple[str, str, int]] = []


def observe(route: str, method: str, status: int, seconds: float) -> None:
    assert seconds >= 0
    observed.append((route, method, status))


async def echo(request: WebhookRequest) -> tuple[int, bytes]:
    seen.append(request)
    if request.body == b"boom":
        raise RuntimeError("a bug in the handler")
    return 202, b'{"got":%d}' % len(request.body)


def app_with_hook(*, fast_path: bool) -> Litestar:
    route = webhook_route("hook", echo, max_body=1000)
    router = Router(path="/channels/c1", route_handlers=[route])
    app = Litestar([router], exception_handlers={Exception: _exception_handler}, logging_config=None)
    if fast_path:
        endpoint = webhook_endpoint(route)
        assert endpoint is not None
        app.asgi_handler = WebhookFastPath(app.asgi_handler, {"/channels/c1/hook": endpoint}, observe)
    return app


@pytest.fixture(params=["litestar route", "fast path"])
async def url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    seen.clear()
    observed.clear()
    async with serve(app_with_hook(fast_path=request.param == "fast path")) as server:
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


def test_max_body_must_be_positive_and_the_path_takes_no_parameters() -> None:
    with pytest.raises(ValueError, match="max_body"):
        webhook_route("x", echo, max_body=0)
    with pytest.raises(ValueError, match="no parameters"):
        webhook_route("hook/{token:str}", echo)


async def test_the_fast_path_counts_what_it_answers_and_passes_other_paths_on() -> None:
    observed.clear()
    async with serve(app_with_hook(fast_path=True)) as server, httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.post("/channels/c1/hook", content=b"12345")).status_code == 202
        assert (await client.put("/channels/c1/hook", content=b"x")).status_code == 405
        assert (await client.post("/channels/c1/hook", content=b"boom")).status_code == 500
        # Not an exact webhook path: Litestar routes it (the trailing slash) or answers 404.
        assert (await client.post("/channels/c1/hook/", content=b"abc")).json() == {"got": 3}
        assert (await client.post("/channels/c2/hook", content=b"abc")).status_code == 404
    assert observed == [("/channels/c1/hook", "POST", 202), ("/channels/c1/hook", "PUT", 405),
                        ("/channels/c1/hook", "POST", 500)]


def test_only_routes_made_by_webhook_route_have_an_endpoint() -> None:
    from litestar import post as post_route

    @post_route("/other")
    async def other() -> None: ...

    assert webhook_endpoint(webhook_route("x", echo)) is not None
    assert webhook_endpoint(other) is None
    assert webhook_endpoint(object()) is None
