"""What the operator commands (`status`, `dead-letters`) share: config → queue, and one-line errors.

They read the config without the adapter registry on purpose: inspecting a backlog must work even when an
adapter plugin is broken or not installed where the operator runs the command.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from bridge.config import Config, ConfigError, load_config
from bridge.queue import Queue, QueueError, open_queue
from bridge.queue.sqlite import SqliteQueue

__all__ = [
    "EXIT_FAILED",
    "EXIT_INVALID_CONFIG",
    "EXIT_OK",
    "add_config_argument",
    "format_age",
    "format_time",
    "run_with_queue",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID_CONFIG = 2


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", required=True, metavar="FILE", help="the bridge's YAML config file")


def run_with_queue(command: str, config_path: str, work: Callable[[Config, Queue], Awaitable[int]]) -> int:
    """Load the config, open its queue, run `work`; every failure becomes a line on stderr and an exit code."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return EXIT_INVALID_CONFIG
    try:
        queue = open_queue(config.store.url, dedupe_ttl=config.delivery.dedupe_ttl)
    except ValueError as exc:
        print(f"{config_path}: store.url: {exc}", file=sys.stderr)
        return EXIT_INVALID_CONFIG
    if isinstance(queue, SqliteQueue) and not queue.path.is_file():
        # Opening would create an empty database: a typo in the path must not look like an empty backlog.
        print(f"{command}: no queue database at {queue.path} (has the bridge run here yet?)", file=sys.stderr)
        return EXIT_FAILED
    try:
        return asyncio.run(_run(queue, config, work))
    except QueueError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return EXIT_FAILED


async def _run(queue: Queue, config: Config, work: Callable[[Config, Queue], Awaitable[int]]) -> int:
    await queue.open()
    try:
        return await work(config, queue)
    finally:
        await queue.close()


def format_age(seconds: float | None) -> str:
    """A short human age: 45s, 2m05s, 3h12m, 2d04h."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def format_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def print_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """Columns padded to their widest cell, for people reading a terminal (`--json` is for programs)."""
    lines = [header, *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    sys.stdout.flush()
