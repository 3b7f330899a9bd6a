"""`omnichannel-bridge dead-letters list|show|replay|drop -c FILE`: inspect and resolve undeliverable messages.

`replay` puts dead letters back at the tail of their chat's queue, in the order they were dead-lettered (the
order the chat should have seen them), behind anything already waiting in that chat; a running bridge
delivers them at once. `drop` deletes them for good. Both take ids, or `--all` with optional `--channel` and
`--direction` filters. Exit 0 when everything asked for was done, 1 when an id was not found or the queue
could not be read, 2 for an invalid config or bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import msgspec

from bridge.commands._queue_access import (
    EXIT_FAILED,
    EXIT_INVALID_CONFIG,
    EXIT_OK,
    add_config_argument,
    format_time,
    print_table,
    run_with_queue,
)
from bridge.config import Config
from bridge.queue import DeadLetter, Queue

__all__ = ["HELP", "add_arguments", "main"]

HELP = "list, show, replay or drop messages that could not be delivered"

_ALL = 10**9  # `--all` means every dead letter; the queues page through them themselves
_REASON_WIDTH = 70


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="list dead letters, oldest first")
    add_config_argument(listing)
    _add_filters(listing)
    listing.add_argument("--limit", type=_positive, default=100, help="at most this many (default 100)")
    listing.add_argument("--json", action="store_true", help="print one JSON array")

    show = actions.add_parser("show", help="show dead letters in full, with the message itself")
    add_config_argument(show)
    show.add_argument("ids", nargs="+", metavar="ID")
    show.add_argument("--json", action="store_true", help="print one JSON array")

    for name, text in (
        ("replay", "re-queue dead letters for delivery, in their original order"),
        ("drop", "delete dead letters for good"),
    ):
        action = actions.add_parser(name, help=text)
        add_config_argument(action)
        action.add_argument("ids", nargs="*", metavar="ID")
        action.add_argument("--all", action="store_true", help="every dead letter (that matches the filters)")
        _add_filters(action)


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--channel", metavar="ID", help="only this channel")
    parser.add_argument("--direction", choices=("inbound", "outbound"), help="only this direction")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(args: argparse.Namespace) -> int:
    if args.action in ("replay", "drop"):
        if args.all == bool(args.ids):
            print(f"dead-letters {args.action}: give dead-letter ids or --all (not both)", file=sys.stderr)
            return EXIT_INVALID_CONFIG
        if args.ids and (args.channel or args.direction):
            print(f"dead-letters {args.action}: --channel and --direction go with --all", file=sys.stderr)
            return EXIT_INVALID_CONFIG
    work = {"list": _list, "show": _show, "replay": _resolve, "drop": _resolve}[args.action]

    async def run(config: Config, queue: Queue) -> int:
        return await work(args, queue)

    return run_with_queue(f"dead-letters {args.action}", args.config, run)


async def _list(args: argparse.Namespace, queue: Queue) -> int:
    letters = await queue.dead_letters(channel_id=args.channel, direction=args.direction, limit=args.limit)
    if args.json:
        print(msgspec.json.encode([_summary(letter) for letter in letters]).decode())
        return EXIT_OK
    if not letters:
        print("no dead letters")
        return EXIT_OK
    header = ("ID", "CHANNEL", "DIRECTION", "CHAT", "ATTEMPTS", "DEAD SINCE", "REASON")
    rows = [
        (
            letter.id,
            letter.channel_id,
            letter.direction,
            str(letter.chat_id),
            str(letter.attempts),
            format_time(letter.dead_at),
            _shorten(letter.reason),
        )
        for letter in letters
    ]
    print_table(header, rows)
    return EXIT_OK


async def _show(args: argparse.Namespace, queue: Queue) -> int:
    found: list[DeadLetter] = []
    missing: list[str] = []
    for dead_id in args.ids:
        letter = await queue.get_dead_letter(dead_id)
        if letter is None:
            missing.append(dead_id)
        else:
            found.append(letter)
    if args.json:
        print(msgspec.json.encode([{**_summary(letter), "item": _item(letter)} for letter in found]).decode())
    else:
        for letter in found:
            print(f"dead letter {letter.id}")
            for name, value in (
                ("channel", letter.channel_id),
                ("direction", letter.direction),
                ("chat", letter.chat_id),
                ("dedupe key", letter.dedupe_key),
                ("taken over", format_time(letter.enqueued_at)),
                ("dead since", format_time(letter.dead_at)),
                ("attempts", letter.attempts),
                ("reason", letter.reason),
            ):
                print(f"  {name + ':':<12}{value}")
            print("  item:")
            for line in _pretty(letter.body).splitlines():
                print(f"    {line}")
    return _report_missing(args.action, missing)


async def _resolve(args: argparse.Namespace, queue: Queue) -> int:
    if args.all:
        letters = await queue.dead_letters(channel_id=args.channel, direction=args.direction, limit=_ALL)
        ids = [letter.id for letter in letters]
    else:
        ids = list(dict.fromkeys(args.ids))
    done = await (queue.replay(ids) if args.action == "replay" else queue.drop(ids))
    verb = "replayed" if args.action == "replay" else "dropped"
    print(f"{verb} {len(done)} dead letter(s)" + (f": {', '.join(done)}" if done else ""))
    return _report_missing(args.action, [dead_id for dead_id in ids if dead_id not in set(done)])


def _report_missing(action: str, missing: Sequence[str]) -> int:
    for dead_id in missing:
        print(f"dead-letters {action}: no dead letter with id {dead_id!r}", file=sys.stderr)
    return EXIT_FAILED if missing else EXIT_OK


def _summary(letter: DeadLetter) -> dict[str, object]:
    return {
        "id": letter.id,
        "channel_id": letter.channel_id,
        "direction": letter.direction,
        "chat_id": letter.chat_id,
        "dedupe_key": letter.dedupe_key,
        "taken_over_at": letter.enqueued_at,
        "dead_at": letter.dead_at,
        "attempts": letter.attempts,
        "reason": letter.reason,
    }


def _item(letter: DeadLetter) -> object:
    try:
        return msgspec.json.decode(letter.body)
    except msgspec.DecodeError:
        return letter.body.decode("utf-8", "replace")


def _pretty(body: bytes) -> str:
    try:
        return msgspec.json.format(body, indent=2).decode()
    except msgspec.DecodeError:
        return body.decode("utf-8", "replace")


def _shorten(reason: str) -> str:
    reason = " ".join(reason.split())
    return reason if len(reason) <= _REASON_WIDTH else reason[: _REASON_WIDTH - 1] + "…"
