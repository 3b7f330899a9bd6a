"""What every benchmark process shares: the request body, core pinning, percentiles.

The same ~400-byte Telegram update is sent to every endpoint, so the bare endpoint, the naive relay and the
bridge decode comparable work. Its text carries the run's phase and the sender's `time.monotonic_ns()` (one
clock for every process on a Linux host), which is how the platform stub measures the latency the bridge adds.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from collections.abc import Sequence

__all__ = [
    "APP_CORE",
    "BOT_TOKEN",
    "LOAD_CORE",
    "MACHINE_CPUS",
    "PLATFORM_PATH",
    "WEBHOOK_SECRET",
    "cpus_for",
    "free_port",
    "parse_stamp",
    "percentile",
    "pin_to",
    "update_body",
]

APP_CORE = 0
LOAD_CORE = 1
BOT_TOKEN = "123456789:BENCH-telegram-token_abcdefgh"
WEBHOOK_SECRET = "bench-webhook-secret"
PLATFORM_PATH = "/omnichannel_message/bench-token/bot_api_webhook"
# Padding that brings the update to about 400 bytes, like an ordinary chat message with a sender profile.
_FILLER = "Hello, I would like to know whether my order has shipped and when it will arrive. Thanks!"


# The CPUs this run may use, read once at import: before anything is pinned. Read later, in a process already
# pinned to the load core, it would pin every server to that same core too.
MACHINE_CPUS: frozenset[int] = frozenset(os.sched_getaffinity(0))


def cpus_for(core: int) -> set[int]:
    """The CPU set that stands for `core` on this machine (all of them when there is only one)."""
    available = sorted(MACHINE_CPUS)
    if len(available) < 2:
        return set(available)
    return {core} if core in MACHINE_CPUS else {available[core % len(available)]}


def pin_to(core: int) -> None:
    """Pin the calling process (and the threads it starts later) to one CPU, when the machine has it."""
    os.sched_setaffinity(0, cpus_for(core))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def update_body(seq: int, chats: int, phase: str) -> bytes:
    """A Telegram message update, unique per `seq` (update id and message id), spread over `chats` chats."""
    chat = 100_000 + seq % chats
    stamp = time.monotonic_ns()
    update = {
        "update_id": seq,
        "message": {
            "message_id": seq,
            "date": 1_700_000_000,
            "chat": {"id": chat, "type": "private", "first_name": "Ann", "last_name": "Lee", "username": "ann_lee"},
            "from": {"id": chat, "is_bot": False, "first_name": "Ann", "last_name": "Lee", "username": "ann_lee",
                     "language_code": "en"},
            "text": f"bench {phase} {stamp} {_FILLER}",
        },
    }
    return json.dumps(update, separators=(",", ":")).encode()


def parse_stamp(text: str) -> tuple[str, int] | None:
    """(phase, send time in ns) from a message text `update_body` wrote; None for any other text."""
    parts = text.split(" ", 3)
    if len(parts) < 3 or parts[0] != "bench" or not parts[2].isdigit():
        return None
    return parts[1], int(parts[2])


def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values; None when there are none."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[rank]
