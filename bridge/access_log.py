"""Access lines: one per HTTP request, written by the bridge instead of by uvicorn's access logger.

Under load access lines are most of what is logged. Made by uvicorn, each is a `LogRecord` that goes through
the logging module, the redacting filter and the formatter, code that is cold again by the time the next
request comes round: about 35 µs of CPU per line in the running server, some 8 % of a message (benchmark
runs with and without access lines). `AccessLog` writes the same line straight to the bridge's handler
(`BridgeLogHandler.write_access`): about 13 µs, 3 %. The
line is the one uvicorn's record would have become: logger `uvicorn.access`, the same event text, `client`,
`method`, `path` and `status`, redacted the same way. When the bridge's handler is not the only one that
would write it (a test capturing records, an application embedding the bridge with logging of its own) or a
log context is to be added, a record like uvicorn's is made and handled by the root logger's handlers (the
`uvicorn.access` logger itself is switched off by uvicorn, which is told to write no access lines).

`uvicorn_options` is what every server of the bridge passes to uvicorn, so that access lines come from here
and nowhere else.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from bridge.config import LoggingConfig
from bridge.logs import ACCESS_FORMAT, ACCESS_LOGGER, BridgeLogHandler

__all__ = ["AccessLog", "uvicorn_options"]

_Asgi = Any  # an ASGI application: (scope, receive, send) -> awaitable
_INTERNAL_ERROR: Final = 500


class AccessLog:
    """ASGI middleware writing one access line per HTTP request, when its response starts (as uvicorn
    does). A request the app fails before answering is logged with the 500 the server then sends."""

    def __init__(self, app: _Asgi) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_and_log(message: Any) -> None:
            nonlocal started
            if not started and message["type"] == "http.response.start":
                started = True
                self.write(scope, message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_log)
        except BaseException:
            if not started:
                self.write(scope, _INTERNAL_ERROR)
            raise

    def write(self, scope: Any, status: int) -> None:
        root = logging.root
        if not root.isEnabledFor(logging.INFO):
            return
        # uvicorn's own `get_client_addr`/`get_path_with_query_string`, except that a query string that is not
        # ASCII is shown with replacement characters instead of raising while the response starts.
        client = scope.get("client")
        address = f"{client[0]}:{int(client[1])}" if client else ""
        path = scope.get("raw_path") or scope["path"].encode("utf-8")
        target = path.decode("latin-1")
        if scope.get("query_string"):
            target = f"{target}?{scope['query_string'].decode('ascii', 'replace')}"
        target = target.replace('"', "%22")
        method, version = scope.get("method", ""), scope.get("http_version", "1.1")
        handlers = root.handlers
        handler = handlers[0] if len(handlers) == 1 and not root.filters else None
        args = (address, method, target, version, status)
        if not (isinstance(handler, BridgeLogHandler) and handler.write_access(*args)):
            root.handle(root.makeRecord(ACCESS_LOGGER, logging.INFO, "(unknown file)", 0, ACCESS_FORMAT, args, None))


def uvicorn_options(config: LoggingConfig, app: _Asgi) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run`/`uvicorn.Config`, the app included, that leave logging to
    `configure_logging`: no dictConfig of uvicorn's own (its handlers would print lines unredacted), and
    access lines (when `config.access_log`) from `AccessLog` rather than from uvicorn."""
    return {
        "app": AccessLog(app) if config.access_log else app,
        "log_config": None,
        "log_level": config.level.lower(),
        "access_log": False,
    }
