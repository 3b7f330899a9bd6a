"""`omnichannel-bridge` command line: one small module per sub-command under `bridge.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

# sub-command name → module under bridge.commands exposing `HELP`, `add_arguments(parser)`, `main(args) -> int`
COMMANDS: dict[str, str] = {
    "run": "run",
    "check-config": "check_config",
    "demo": "demo",
    "emulator": "emulator",
    "smoke": "smoke",
    "status": "status",
    "dead-letters": "dead_letters",
    "adapters": "adapters",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omnichannel-bridge",
        description="Bridge between messengers and the chatbot platform's Omnichannel API.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(f"bridge.commands.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"bridge.commands.{module_name}":
                raise
            continue
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(handler=module.main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
