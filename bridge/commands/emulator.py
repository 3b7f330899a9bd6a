"""`omnichannel-bridge emulator`: serve the platform emulator, to try the bridge end to end without the
platform."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.emulator import EmulatorConfig

__all__ = ["HELP", "UsageError", "add_arguments", "build_config", "emulator_secrets", "main"]

HELP = "Run a local emulator of the platform (its webhook plus a scripted agent that replies)."

_EPILOG = """\
examples:
  omnichannel-bridge emulator --token T --reply-url http://127.0.0.1:8080/channels/demo --reply-token S
  omnichannel-bridge emulator --channel T1 http://127.0.0.1:8080/channels/one/URL-SECRET \\
                              --channel T2 http://127.0.0.1:8080/channels/two S2
  omnichannel-bridge emulator -c emulator.yaml

The bridge's channel then uses webhook_url
  http://HOST:PORT/connector/omnichannel/omnichannel_message/TOKEN/bot_api_webhook
"""


_MIN_SECRET_LENGTH = 6


class UsageError(Exception):
    pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = _EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("-c", "--config", type=Path, help="emulator YAML file (channels, script, reply_delay)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8090, help="port to listen on (default: 8090)")
    parser.add_argument("--token", help="the channel's webhook token (one channel; see --channel for more)")
    parser.add_argument("--reply-url", help="the channel's \"Channel webhook: URL\" (the bridge's reply endpoint)")
    parser.add_argument("--reply-token", help="send `Authorization: Token X` with replies (header mode)")
    parser.add_argument(
        "--channel",
        nargs="+",
        action="append",
        default=[],
        metavar="FIELD",
        help="a channel as TOKEN REPLY_URL [REPLY_TOKEN]; repeat for several",
    )
    parser.add_argument("--script", type=Path, help="YAML script replacing the default agent script")
    parser.add_argument("--reply-delay", type=float, help="seconds the agent waits before each reply")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def build_config(args: argparse.Namespace) -> EmulatorConfig:
    """The `EmulatorConfig` the arguments describe; raise `UsageError` with a human message.

    The emulator (and Litestar) are imported here, not at module level: every command module is imported to
    build the CLI's help, and the other commands should not pay for this one.
    """
    from bridge.emulator import (
        EmulatorChannel,
        EmulatorConfig,
        EmulatorConfigError,
        ScriptError,
        load_emulator_config,
        load_script,
    )

    try:
        config = load_emulator_config(args.config) if args.config else EmulatorConfig()
    except EmulatorConfigError as exc:
        raise UsageError(str(exc)) from None
    triplets: list[list[str]] = list(args.channel)
    if args.token or args.reply_url or args.reply_token:
        if not (args.token and args.reply_url):
            raise UsageError("--token and --reply-url go together (--reply-token is optional)")
        triplets.insert(0, [args.token, args.reply_url, *([args.reply_token] if args.reply_token else [])])
    channels = list(config.channels)
    for triplet in triplets:
        if len(triplet) not in (2, 3):
            raise UsageError(f"--channel takes TOKEN REPLY_URL [REPLY_TOKEN], got {' '.join(triplet)!r}")
        try:
            channels.append(
                EmulatorChannel(
                    token=triplet[0],
                    reply_url=triplet[1],
                    reply_token=triplet[2] if len(triplet) == 3 else None,
                )
            )
        except ValueError as exc:
            raise UsageError(f"channel {triplet[0]!r}: {exc}") from None
    if not channels:
        raise UsageError("no channel: give --token and --reply-url, --channel, or -c FILE")
    script = config.script
    if args.script:
        try:
            script = load_script(args.script)
        except ScriptError as exc:
            raise UsageError(str(exc)) from None
    reply_delay = config.reply_delay if args.reply_delay is None else args.reply_delay
    if reply_delay < 0:
        raise UsageError("--reply-delay must be >= 0")
    try:
        return EmulatorConfig(
            channels=channels,
            script=script,
            reply_delay=reply_delay,
            reply_timeout=config.reply_timeout,
            public_url=config.public_url,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def emulator_secrets(config: EmulatorConfig) -> set[str]:
    """What the emulator's logs must not show: each channel's webhook token and reply token, and in secret-URL
    mode (no reply token) the reply URL itself, which is then the secret. Values shorter than
    `_MIN_SECRET_LENGTH` are left alone: a token like `T` in a try-out is no secret, and masking every `T`
    would make the log unreadable."""
    found: set[str] = set()
    for channel in config.channels:
        found.update({channel.token, channel.reply_token or channel.base_reply_url})
    return {value for value in found if len(value) >= _MIN_SECRET_LENGTH}


def main(args: argparse.Namespace) -> int:
    try:
        config = build_config(args)
    except UsageError as exc:
        print(f"omnichannel-bridge emulator: {exc}", file=sys.stderr)
        return 2
    if not 0 < args.port < 65536:
        print("omnichannel-bridge emulator: --port must be 1..65535", file=sys.stderr)
        return 2

    import uvicorn

    from bridge.access_log import uvicorn_options
    from bridge.config import LoggingConfig
    from bridge.emulator import create_emulator_app
    from bridge.logs import configure_logging

    # The bridge's logging, readable at a terminal: the same redaction as the bridge's (webhook tokens in
    # access lines, `Authorization` values, the tokens and secret reply URLs below), and uvicorn's lines too.
    logging_config = LoggingConfig(level=args.log_level, format="console")
    configure_logging(logging_config, emulator_secrets(config))
    for channel in config.channels:
        mode = "header token" if channel.reply_token else "secret URL"
        print(
            f"channel {channel.token}: webhook http://{args.host}:{args.port}/connector/omnichannel/"
            f"omnichannel_message/{channel.token}/bot_api_webhook → replies to {channel.base_reply_url}/"
            f"send_message ({mode})",
            file=sys.stderr,
        )
    uvicorn.run(host=args.host, port=args.port, **uvicorn_options(logging_config, create_emulator_app(config)))
    return 0
