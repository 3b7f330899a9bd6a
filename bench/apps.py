"""The two reference servers the bridge is compared with, each a minimal Litestar app under uvicorn.

    python bench/apps.py bare  --port 8001
    python bench/apps.py relay --port 8002 --upstream http://127.0.0.1:9000/relay

`bare` decodes the body into a msgspec Struct and answers 200: the ceiling of any Litestar endpoint on this
server stack. `relay` is what a bridge without a queue does: it awaits an httpx POST of the update to the
upstream before answering, so every webhook answer waits on the platform and pays httpx's CPU cost.
Both run uvicorn exactly as `omnichannel-bridge run` does (same loop and HTTP parser, the same garbage collector
settings once started), without access logs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import msgspec
import uvicorn
from litestar import Litestar, Request, Response, post

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import APP_CORE, pin_to

from bridge.commands.run import tune_gc_after_startup

__all__ = ["bare_app", "main", "relay_app"]

_OK = b'{"ok":true}'


class _Chat(msgspec.Struct):
    id: int
    type: str


class _User(msgspec.Struct):
    id: int
    is_bot: bool
    first_name: str
    last_name: str | None = None
    username: str | None = None


class _Message(msgspec.Struct):
    message_id: int
    date: int
    chat: _Chat
    text: str | None = None
    from_: _User | None = msgspec.field(default=None, name="from")


class _Update(msgspec.Struct):
    update_id: int
    message: _Message | None = None


_decoder = msgspec.json.Decoder(_Update)


def _decode(body: bytes) -> _Update | None:
    try:
        return _decoder.decode(body)
    except msgspec.DecodeError:
        return None


def bare_app() -> Litestar:
    @post("/webhook", status_code=200)
    async def webhook(request: Request[Any, Any, Any]) -> Response[bytes]:
        if _decode(await request.body()) is None:
            return Response(b'{"ok":false}', status_code=400, media_type="application/json")
        return Response(_OK, media_type="application/json")

    return Litestar(route_handlers=[webhook], logging_config=None, openapi_config=None, debug=False)


def relay_app(upstream: str) -> Litestar:
    holder: dict[str, httpx.AsyncClient] = {}

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        # One shared, pooled client: the sensible way to use httpx, not a new client per request.
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        async with httpx.AsyncClient(timeout=10.0, limits=limits) as client:
            holder["client"] = client
            yield

    @post("/webhook", status_code=200)
    async def webhook(request: Request[Any, Any, Any]) -> Response[bytes]:
        body = await request.body()
        if _decode(body) is None:
            return Response(b'{"ok":false}', status_code=400, media_type="application/json")
        answer = await holder["client"].post(upstream, content=body, headers={"Content-Type": "application/json"})
        status = 200 if answer.status_code < 300 else 502
        return Response(_OK, status_code=status, media_type="application/json")

    return Litestar(
        route_handlers=[webhook], lifespan=[lifespan], logging_config=None, openapi_config=None, debug=False
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=("bare", "relay"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", help="the relay's upstream URL (relay only)")
    args = parser.parse_args(argv)
    if args.kind == "relay" and not args.upstream:
        parser.error("relay needs --upstream")
    pin_to(APP_CORE)
    factory: Callable[[], Litestar] = bare_app if args.kind == "bare" else (lambda: relay_app(args.upstream))
    uvicorn.run(tune_gc_after_startup(factory()), host="127.0.0.1", port=args.port, log_level="warning",
                access_log=False, server_header=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
