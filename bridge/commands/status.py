"""`omnichannel-bridge status -c FILE`: the delivery backlog per channel and direction.

Every configured channel is listed in both directions, also when idle, so that an empty line means "nothing
waiting" rather than "not looked at"; channels that are no longer configured but still have items or dead
letters are listed too. Exit 0 when the queue could be read, 1 when not, 2 for an invalid config.
"""

from __future__ import annotations

import argparse

import msgspec

from bridge.commands._queue_access import add_config_argument, format_age, print_table, run_with_queue
from bridge.config import Config
from bridge.handoff import DeliveryStatus
from bridge.queue import Queue

__all__ = ["HELP", "add_arguments", "main"]

HELP = "show queued, in-flight and dead-lettered messages per channel and direction"

_COLUMNS = ("CHANNEL", "DIRECTION", "QUEUED", "IN FLIGHT", "OLDEST", "DEAD LETTERS")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON array (ages in seconds)")


def main(args: argparse.Namespace) -> int:
    async def show(config: Config, queue: Queue) -> int:
        rows = merged_rows(config, await queue.status())
        if args.json:
            print(msgspec.json.encode(rows).decode())
        else:
            print_status(rows)
        return 0

    return run_with_queue("status", args.config, show)


def merged_rows(config: Config, found: list[DeliveryStatus]) -> list[DeliveryStatus]:
    rows = {(row.channel_id, row.direction): row for row in found}
    for channel in config.channels:
        for direction in ("inbound", "outbound"):
            rows.setdefault((channel.id, direction), DeliveryStatus(channel_id=channel.id, direction=direction))
    return [rows[key] for key in sorted(rows)]


def print_status(rows: list[DeliveryStatus]) -> None:
    print_table(
        _COLUMNS,
        [
            (
                row.channel_id,
                row.direction,
                str(row.queued),
                str(row.in_flight),
                format_age(row.oldest_age),
                str(row.dead_letters),
            )
            for row in rows
        ],
    )
