"""`omnichannel-bridge check-config FILE`: validate a config and print what to paste into the platform.

Meant to be run before every deploy (and in CI): exit 0 when the file is valid, 2 with one line per problem on
stderr otherwise, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from bridge._errors import describe_error
from bridge.config import (
    ChannelConfig,
    Config,
    ConfigError,
    load_config,
    masked_webhook_url,
    reply_base_url,
    reply_urls,
    webhook_token,
)

__all__ = ["HELP", "add_arguments", "main"]

HELP = "validate a config file and print the URLs to paste into the platform"

EXIT_OK = 0
EXIT_INVALID = 2
_LISTEN_ALL = ("0.0.0.0", "::")
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", metavar="FILE", help="the YAML config file")
    parser.add_argument("-c", "--config", metavar="FILE", dest="config_file", help="the YAML config file")
    parser.add_argument(
        "--show-secrets",
        action="store_true",
        help="print tokens and secrets in full (they are masked by default, except their last 4 characters)",
    )


def _installed_adapters() -> Mapping[str, type[Any]] | None:
    """The adapters installed as entry points, or None when adapter discovery is not available."""
    try:
        from bridge.plugins import discover_adapters
    except ImportError:
        return None
    return discover_adapters()


def _fail(lines: list[str], stream: TextIO) -> int:
    for line in lines:
        print(line, file=stream)
    return EXIT_INVALID


def main(args: argparse.Namespace) -> int:
    path: str | None = args.config_file or args.file
    if args.config_file and args.file and args.config_file != args.file:
        return _fail(["check-config: give the config file once (FILE or -c FILE), not two different ones"], sys.stderr)
    if not path:
        return _fail(["check-config: no config file given: pass FILE or -c FILE"], sys.stderr)
    try:
        adapters = _installed_adapters()
        config = load_config(path, adapters)
    except ConfigError as exc:
        return _fail(exc.problems, sys.stderr)
    except Exception as exc:  # a broken plugin or a bug: still one line, as promised
        return _fail([f"{path}: cannot check the config: {describe_error(exc)}"], sys.stderr)
    report(config, path, reveal=args.show_secrets, registry_known=adapters is not None, out=sys.stdout)
    return EXIT_OK


def report(config: Config, path: str, *, reveal: bool, registry_known: bool, out: TextIO) -> None:
    """Print the verdict and, per channel, the two URLs that connect it to the platform."""
    count = len(config.channels)
    print(f"{path}: OK ({count} channel{'s' if count != 1 else ''})", file=out)
    if not registry_known:
        print("note: adapter discovery is unavailable, so the adapters' own keys were not checked", file=out)
    if config.server.public_url is None:
        base = reply_base_url(config)
        print(
            f"note: server.public_url is not set, so the reply URLs below use {base} (server.host and "
            "server.port); set server.public_url to the address the platform reaches the bridge at",
            file=out,
        )
        if config.server.host in _LISTEN_ALL:
            print(f"note: {config.server.host} means every interface: the platform cannot call it", file=out)
        elif config.server.host in _LOOPBACK:
            print(f"note: {config.server.host} is reachable from this machine only", file=out)
    for channel in config.channels:
        print(file=out)
        _print_channel(config, channel, reveal=reveal, out=out)


def _print_channel(config: Config, channel: ChannelConfig, *, reveal: bool, out: TextIO) -> None:
    webhook = channel.platform.webhook_url if reveal else masked_webhook_url(channel.platform.webhook_url)
    print(f"channel {channel.id} (adapter: {channel.adapter_type})", file=out)
    print("  1. the platform's App.Chatbots webhook URL (the bridge posts visitors' messages to it):", file=out)
    print(f"       {webhook}", file=out)
    if webhook_token(channel.platform.webhook_url) is None:
        print(
            "       note: this is not of the documented form "
            "https://{platform}/connector/omnichannel/omnichannel_message/{token}/bot_api_webhook; "
            "the platform answers 404 to other paths",
            file=out,
        )
    print('  2. paste into the platform\'s "Channel webhook: URL" field (it appends /send_message):', file=out)
    for number, (url, auth) in enumerate(reply_urls(config, channel, reveal=reveal)):
        if number:
            print("     or", file=out)
        print(f"       {url}", file=out)
        if auth.startswith("header"):
            print(f'       {auth} (put the token in "Channel webhook: Token")', file=out)
        else:
            print(f'       {auth} (leave "Channel webhook: Token" empty)', file=out)
