"""`omnichannel-bridge run -c FILE`: serve the bridge."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["GC_YOUNG_THRESHOLD", "HELP", "add_arguments", "main", "startup_reason", "tune_gc_after_startup"]

HELP = "run the bridge with a config file"

log = logging.getLogger("bridge.run")

# Net new objects the garbage collector lets accumulate before it looks (CPython's default: 700). A message
# makes hundreds that reference counting frees by itself; at 700 a collection ran ~160 times a second under load
# (~3 % of the CPU) and found nothing. Garbage in cycles waits for at most this many allocations.
GC_YOUNG_THRESHOLD = 20_000

_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]
_Asgi = Callable[[_Message, _Receive, _Send], Awaitable[None]]
_App = Callable[..., Awaitable[None]]  # any ASGI app, Litestar's precise signature included


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", required=True, help="path to the YAML config file")
    parser.add_argument("--host", help="override server.host")
    parser.add_argument("--port", type=int, help="override server.port")
    parser.add_argument(
        "--log-format", choices=("json", "console"), help="override logging.format (json: one object per line)"
    )


def startup_reason(exc: BaseException) -> str:
    """One line saying why the bridge could not start: the first real error inside any exception group, with
    its type unless it is one of the bridge's own errors (whose messages are written for operators)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    from bridge.adapter import AdapterError
    from bridge.store.base import StoreError

    text = " ".join(str(exc).split())
    if isinstance(exc, AdapterError | StoreError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _LifespanOnly:
    """An app whose lifespan goes through `lifespan` and whose requests go straight to `requests`."""

    __slots__ = ("lifespan", "requests")

    def __init__(self, lifespan: _Asgi, requests: _App) -> None:
        self.lifespan = lifespan
        self.requests = requests

    async def __call__(self, scope: _Message, receive: _Receive, send: _Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(scope, receive, send)
        else:
            await self.requests(scope, receive, send)


def _lifespan_only(wrap: Callable[[_App], _Asgi]) -> Callable[[_App], _Asgi]:
    """For a wrapper that changes only how the app's lifespan goes: requests reach the app as they were, past
    every such wrapper at once (one hop per request however many are stacked)."""

    def wrapper(app: _App) -> _Asgi:
        requests = app.requests if isinstance(app, _LifespanOnly) else app
        return _LifespanOnly(wrap(app), requests)

    return wrapper


@_lifespan_only
def _plain_startup_failure(app: _App) -> _Asgi:
    """The app, except that a failed startup is reported as one line instead of Litestar's whole traceback
    (which uvicorn would print as the failure message); the traceback is still logged at DEBUG."""

    async def lifespan(scope: _Message, receive: _Receive, send: _Send) -> None:
        held: list[_Message] = []

        async def send_holding_failure(message: _Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                held.append(message)  # said once the exception that caused it is known
                return
            await send(message)

        try:
            await app(scope, receive, send_holding_failure)
        except BaseException as exc:
            if held:
                log.error("the bridge could not start: %s", startup_reason(exc))
                log.debug("startup failure", exc_info=exc)
                await send({"type": "lifespan.startup.failed", "message": ""})
            raise
        if held:  # failed without raising: pass the failure on as it was
            await send(held[0])

    return lifespan


@_lifespan_only
def tune_gc_after_startup(app: _App) -> _Asgi:
    """The app, with the garbage collector set for serving once its startup is complete: every object that
    exists then (modules, config, connections, caches: tens of thousands) is moved out of the collector's
    sight (`gc.freeze`), and young objects are looked at less often (`GC_YOUNG_THRESHOLD`).

    Messages in flight live long enough to reach the oldest generation, so under load Python ran a full
    collection every second or so, and each one walked every object of the process: ~8 % of the bridge's
    CPU and the longest pauses in its answer times (see bench/README.md), for no garbage, as these objects
    live as long as the process. Done here, by the process's entry point, and not in `create_app`: the
    collector is the whole process's, which an application embedding the bridge owns.
    """

    async def lifespan(scope: _Message, receive: _Receive, send: _Send) -> None:
        async def send_freezing(message: _Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                gc.collect()  # what startup left as garbage is freed, not kept for good
                gc.freeze()
                gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
            await send(message)

        await app(scope, receive, send_freezing)

    return lifespan


def main(args: argparse.Namespace) -> int:
    import uvicorn

    from bridge.access_log import uvicorn_options
    from bridge.app import create_app
    from bridge.config import ConfigError, load_config, secret_values
    from bridge.logs import configure_logging
    from bridge.plugins import discover_adapters

    adapters = discover_adapters()
    try:
        config = load_config(args.config, adapters)
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return 2
    # Before anything logs: from here on every line is redacted.
    configure_logging(config.logging, secret_values(config), log_format=args.log_format)
    app = create_app(config, adapters=adapters)
    uvicorn.run(
        host=args.host or config.server.host,
        port=args.port or config.server.port,
        proxy_headers=True,
        server_header=False,
        **uvicorn_options(config.logging, _plain_startup_failure(tune_gc_after_startup(app))),
    )
    return 0
