"""CPU cost of reading one incoming Telegram update: PTB's objects against the adapter's msgspec Structs.

    python bench/telegram_parse.py [--repeat 5] [--seconds 0.2]

Single-threaded, in process, on a ~400-byte text update like the load generator's. Prints one line per way of
reading it, in µs per update (the best of `--repeat` rounds of about `--seconds` each):

* `ptb`: what the webhook did before: decode the body to a dict, then `telegram.Update.de_json`.
* `wire from bytes`: `parse_update(body)`, what the webhook does now (one typed decode).
* `wire via dict`: decode the body to a dict, then `parse_update(dict)`: the alternative for the webhook.
* `wire from dict`: `parse_update(dict)` alone, what polling does with each object of a getUpdates batch.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from telegram import Update

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.telegram.wire import parse_update

__all__ = ["main", "measure"]

_FILLER = "Hello, I would like to know whether my order has shipped and when it will arrive. Thanks!"


def _body() -> bytes:
    update = {
        "update_id": 912_345_678,
        "message": {
            "message_id": 4711,
            "date": 1_700_000_000,
            "chat": {"id": 100_042, "type": "private", "first_name": "Ann", "last_name": "Lee", "username": "ann_lee"},
            "from": {"id": 100_042, "is_bot": False, "first_name": "Ann", "last_name": "Lee", "username": "ann_lee",
                     "language_code": "en"},
            "text": f"bench max 1234567890123 {_FILLER}",
        },
    }
    return json.dumps(update, separators=(",", ":")).encode()


def measure(call: Callable[[], Any], *, repeat: int, seconds: float) -> float:
    """Best µs per call over `repeat` rounds of about `seconds` each."""
    number = 1
    while True:  # calibrate: enough calls for one round to last about `seconds`
        start = time.perf_counter()
        for _ in range(number):
            call()
        if time.perf_counter() - start >= seconds / 10:
            break
        number *= 2
    number *= 10
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            call()
        best = min(best, (time.perf_counter() - start) / number)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.2)
    args = parser.parse_args()
    body = _body()
    data = msgspec.json.decode(body)
    ways: dict[str, Callable[[], Any]] = {
        "ptb": lambda: Update.de_json(msgspec.json.decode(body), None),
        "wire from bytes": lambda: parse_update(body),
        "wire via dict": lambda: parse_update(msgspec.json.decode(body)),
        "wire from dict": lambda: parse_update(data),
    }
    print(f"update: {len(body)} bytes")
    for name, call in ways.items():
        print(f"{name:>16}: {measure(call, repeat=args.repeat, seconds=args.seconds):8.2f} µs/update")


if __name__ == "__main__":
    main()
