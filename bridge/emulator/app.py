"""HTTP in front of `Emulator`: the platform's webhook, the files its agent links to, and the test controls.

Routes:
- `POST /connector/omnichannel/omnichannel_message/{token}/bot_api_webhook` — the platform's inbound endpoint;
- `GET /files/sample.txt`, `GET /files/sample.png` — what the agent's file replies link to (loopback only);
- `GET /_emulator/received`, `GET /_emulator/replies` — the records, as JSON lists;
- `POST /_emulator/reset` — forget records, faults and pending replies;
- `GET|POST|DELETE /_emulator/mode` — list, add (a `FaultRule` as JSON) or clear the fault rules.
Any other path is a 404, as on the platform.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, delete, get, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from bridge.emulator.config import EmulatorConfig
from bridge.emulator.core import Emulator
from bridge.emulator.records import FaultRule

__all__ = ["WEBHOOK_PATH", "create_emulator_app", "emulator_of", "sample_files"]

WEBHOOK_PATH = "/connector/omnichannel/omnichannel_message/{token}/bot_api_webhook"
_JSON = "application/json"


def emulator_of(app: Litestar) -> Emulator:
    """The `Emulator` behind an app made by `create_emulator_app` (for in-process helpers)."""
    emulator = app.state.get("emulator")
    if not isinstance(emulator, Emulator):
        raise TypeError("not an app made by create_emulator_app")
    return emulator


def _emulator(request: Request[Any, Any, Any]) -> Emulator:
    return emulator_of(request.app)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(content=msgspec.json.encode(body), status_code=status, media_type=_JSON, headers=headers)


def _png_1x1() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x2a\x7f\xd4")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def sample_files() -> dict[str, tuple[bytes, str]]:
    """name → (content, media type) served under `/files/`."""
    text = "A sample file from the platform emulator.\nIt is served on loopback, nothing leaves the machine.\n"
    return {
        "sample.txt": (text.encode(), "text/plain; charset=utf-8"),
        "sample.png": (_png_1x1(), "image/png"),
    }


@post(WEBHOOK_PATH.replace("{token}", "{token:str}"), status_code=200)
async def webhook(token: FromPath[str], request: Request[Any, Any, Any]) -> Response[bytes]:
    answer = await _emulator(request).receive(
        token, await request.body(), request.headers.get("content-type"), str(request.base_url)
    )
    response = _json(answer.body, answer.status, answer.headers or None)
    if answer.after is not None:
        response.background = BackgroundTask(answer.after)
    return response


@get("/files/{name:str}")
async def files(name: FromPath[str], request: Request[Any, Any, Any]) -> Response[bytes]:
    found = request.app.state["files"].get(name)
    if found is None:
        raise NotFoundException(f"no sample file {name!r}")
    content, media_type = found
    return Response(content=content, media_type=media_type)


@get("/_emulator/received")
async def received(request: Request[Any, Any, Any]) -> Response[bytes]:
    return _json(_emulator(request).recorder.received)


@get("/_emulator/replies")
async def replies(request: Request[Any, Any, Any]) -> Response[bytes]:
    return _json(_emulator(request).recorder.replies)


@post("/_emulator/reset", status_code=200)
async def reset(request: Request[Any, Any, Any]) -> Response[bytes]:
    await _emulator(request).reset()
    return _json({"result": "ok"})


@get("/_emulator/mode")
async def list_faults(request: Request[Any, Any, Any]) -> Response[bytes]:
    return _json({"faults": _emulator(request).faults.active()})


@post("/_emulator/mode", status_code=200)
async def add_fault(request: Request[Any, Any, Any]) -> Response[bytes]:
    try:
        rule = msgspec.json.decode(await request.body(), type=FaultRule)
    except msgspec.DecodeError as exc:
        return _json({"error": f"invalid fault rule: {exc}"}, 400)
    emulator = _emulator(request)
    emulator.faults.add(rule)
    return _json({"result": "ok", "faults": emulator.faults.active()})


@delete("/_emulator/mode", status_code=200)
async def clear_faults(request: Request[Any, Any, Any]) -> Response[bytes]:
    _emulator(request).faults.clear()
    return _json({"result": "ok", "faults": []})


def create_emulator_app(config: EmulatorConfig) -> Litestar:
    """A Litestar app emulating the platform for `config`'s channels; one `Emulator` per app."""
    emulator = Emulator(config)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await emulator.start()
        try:
            yield
        finally:
            await emulator.stop()

    return Litestar(
        route_handlers=[webhook, files, received, replies, reset, list_faults, add_fault, clear_faults],
        lifespan=[lifespan],
        state=State({"emulator": emulator, "files": sample_files()}),
        openapi_config=None,
        logging_config=None,
    )
