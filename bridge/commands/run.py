"""`omnichannel-bridge run -c FILE`: serve the bridge."""

from __future__ import annotations

import argparse
import sys

HELP = "run the bridge with a config file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", required=True, help="path to the YAML config file")
    parser.add_argument("--host", help="override server.host")
    parser.add_argument("--port", type=int, help="override server.port")
    parser.add_argument(
        "--log-format", choices=("json", "console"), help="override logging.format (json: one object per line)"
    )


def main(args: argparse.Namespace) -> int:
    import uvicorn

    from bridge.app import create_app
    from bridge.config import ConfigError, load_config, secret_values
    from bridge.logs import configure_logging, uvicorn_logging
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
        app,
        host=args.host or config.server.host,
        port=args.port or config.server.port,
        proxy_headers=True,
        server_header=False,
        **uvicorn_logging(config.logging),
    )
    return 0
