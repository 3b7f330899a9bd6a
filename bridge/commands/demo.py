"""`omnichannel-bridge demo`: the whole loop on one machine, with no accounts and no Redis.

One process, one event loop, two servers: the bridge (SQLite in the data folder, one web chat channel) and the
platform emulator with its scripted agent. The channel's tokens are drawn at random on each start; nothing
outside loopback is contacted. Signals are handled here, not by uvicorn, since two servers share them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import signal
import socket
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uvicorn

    from bridge.config import Config
    from bridge.emulator import Script

__all__ = ["CHANNEL_ID", "HELP", "add_arguments", "main"]

HELP = "try the bridge with no accounts: the bridge, a local platform emulator and the web chat"

CHANNEL_ID = "demo"
_START_TIMEOUT = 15.0
_STOP_TIMEOUT = 10.0

log = logging.getLogger("bridge.demo")


class DemoError(Exception):
    """Something the person running the demo can fix; the message says what."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", type=Path, default=Path("data/demo"), help="folder for the demo's SQLite store (default: ./data/demo)"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="loopback address both servers listen on (default: 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=8080, help="the bridge's port (default: 8080; 0 = any free port)")
    parser.add_argument(
        "--emulator-port", type=int, default=0, help="the platform emulator's port (default: any free port)"
    )
    parser.add_argument("--script", type=Path, help="YAML script replacing the emulated agent's default one")
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])


def main(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except DemoError as exc:
        print(f"omnichannel-bridge demo: {exc}", file=sys.stderr)
        return 2


# ---------------------------------------------------------------------- building


def _bind(host: str, port: int, what: str) -> socket.socket:
    if not 0 <= port <= 65535:
        raise DemoError(f"{what} port {port} is not a port number (0 to 65535)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        hint = "; pick another with --port (0 = any free port)" if what == "the bridge's" else ""
        raise DemoError(f"cannot listen on {host}:{port} for {what} server: {exc.strerror or exc}{hint}") from None
    return sock


def _url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _script(path: Path | None) -> Script | None:
    if path is None:
        return None
    from bridge.emulator import ScriptError, load_script

    try:
        return load_script(path)
    except ScriptError as exc:
        raise DemoError(str(exc)) from None


def _data_folder(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DemoError(f"cannot create the data folder {path}: {exc.strerror or exc}") from None
    return path.resolve()


def _bridge_config(bridge_url: str, host: str, port: int, webhook_url: str, reply_token: str, data: Path) -> Config:
    from bridge.config import ChannelConfig, Config, PlatformConfig, ServerConfig, StoreConfig

    return Config(
        channels=[
            ChannelConfig(
                id=CHANNEL_ID,
                platform=PlatformConfig(webhook_url=webhook_url, token=reply_token),
                adapter={"type": "webchat", "title": "omnichannel-bridge demo"},
            )
        ],
        server=ServerConfig(host=host, port=port, public_url=bridge_url),
        store=StoreConfig(url=f"sqlite:///{data / 'bridge.db'}"),
    )


@dataclass
class _Servers:
    emulator: uvicorn.Server
    bridge: uvicorn.Server
    sockets: list[socket.socket]
    bridge_url: str


def _server(app: Any, log_level: str) -> uvicorn.Server:
    import uvicorn

    class _Server(uvicorn.Server):
        # The demo handles SIGINT/SIGTERM for both servers; uvicorn's own capture would re-raise the signal
        # once it stops, turning a clean stop into a KeyboardInterrupt.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return _Server(
        uvicorn.Config(
            app,
            log_config=None,
            log_level=log_level,
            access_log=False,
            lifespan="on",
            server_header=False,
            timeout_graceful_shutdown=5,
        )
    )


def _configure_logging(level: str, secrets: Iterable[str]) -> None:
    """The bridge's own logging (the readable console format, for a person at a terminal), so that the demo's
    random channel tokens are redacted from every line as a real bridge's secrets are."""
    from bridge.config import LoggingConfig
    from bridge.logs import configure_logging

    configure_logging(LoggingConfig(level=level, format="console"), secrets)


def _build(args: argparse.Namespace) -> _Servers:
    from adapters.webchat import WebchatAdapter
    from bridge.app import create_app
    from bridge.config import secret_values
    from bridge.emulator import WEBHOOK_PATH, EmulatorChannel, EmulatorConfig, create_emulator_app

    data = _data_folder(args.data)
    script = _script(args.script)
    bridge_sock = _bind(args.host, args.port, "the bridge's")
    try:
        emulator_sock = _bind(args.host, args.emulator_port, "the emulator's")
    except DemoError:
        bridge_sock.close()
        raise
    bridge_url, emulator_url = _url(args.host, bridge_sock), _url(args.host, emulator_sock)
    platform_token, reply_token = secrets.token_hex(16), secrets.token_hex(16)
    emulator_config = EmulatorConfig(
        channels=[
            EmulatorChannel(
                token=platform_token, reply_url=f"{bridge_url}/channels/{CHANNEL_ID}", reply_token=reply_token
            )
        ],
        public_url=emulator_url,
    )
    if script is not None:
        emulator_config.script = script
    webhook_url = emulator_url + WEBHOOK_PATH.replace("{token}", platform_token)
    config = _bridge_config(bridge_url, args.host, bridge_sock.getsockname()[1], webhook_url, reply_token, data)
    # Before the apps are built, so that whatever they log already goes through the bridge's redaction.
    _configure_logging(args.log_level, secret_values(config))
    return _Servers(
        emulator=_server(create_emulator_app(emulator_config), args.log_level),
        bridge=_server(create_app(config, adapters={"webchat": WebchatAdapter}), args.log_level),
        sockets=[emulator_sock, bridge_sock],
        bridge_url=bridge_url,
    )


# ---------------------------------------------------------------------- running


async def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    # uvicorn reports a failed startup with sys.exit(); a SystemExit escaping a task would end the loop.
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:
        raise RuntimeError(f"server exited with code {exc.code}") from None


async def _started(servers: list[uvicorn.Server], tasks: list[asyncio.Task[None]]) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _START_TIMEOUT
    while not all(server.started for server in servers):
        if any(task.done() for task in tasks) or loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def _stop(servers: list[uvicorn.Server], tasks: list[asyncio.Task[None]]) -> bool:
    """Stop the bridge first (so what it is delivering can finish), then the emulator; True when both
    stopped cleanly."""
    clean = True
    for server, task in zip(servers, tasks, strict=True):
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), _STOP_TIMEOUT)
        except TimeoutError:
            server.force_exit = True
            task.cancel()
            clean = False
        except Exception as exc:
            log.error("%s", exc)
            clean = False
    results = await asyncio.gather(*tasks, return_exceptions=True)
    return clean and not any(isinstance(r, BaseException) for r in results)


async def _run(args: argparse.Namespace) -> int:
    built = _build(args)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)

    def on_signal() -> None:
        if stop.is_set():  # a second Ctrl+C: do not wait for anything
            built.bridge.force_exit = built.emulator.force_exit = True
        stop.set()

    for sig in signals:
        loop.add_signal_handler(sig, on_signal)
    order = [built.emulator, built.bridge]
    tasks = [
        asyncio.create_task(_serve(server, sock), name=name)
        for server, sock, name in zip(order, built.sockets, ("emulator", "bridge"), strict=True)
    ]
    try:
        if not await _started(order, tasks):
            print("omnichannel-bridge demo: the servers did not start (see the messages above)", file=sys.stderr)
            await _stop(order[::-1], tasks[::-1])
            return 1
        print(f"Open {built.bridge_url}/channels/{CHANNEL_ID}/chat", flush=True)
        print("Type `menu`, `file`, `long` or anything else. Press Ctrl+C to stop.", flush=True)
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        crashed = stopper not in done
        if crashed:
            print("omnichannel-bridge demo: a server stopped unexpectedly (see the messages above)", file=sys.stderr)
        clean = await _stop(order[::-1], tasks[::-1])
        return 0 if clean and not crashed else 1
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        for sock in built.sockets:
            sock.close()
