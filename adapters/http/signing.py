"""HMAC-SHA256 request signatures, the same both ways: the company's inbound calls and the bridge's callbacks.

The signed string is `{timestamp}.{body}` (the timestamp in Unix seconds, as sent in `X-Bridge-Timestamp`), and
`X-Bridge-Signature` carries `sha256=<lowercase hex>`. Binding the timestamp into the signature lets a receiver
refuse old requests (replays) without keeping any state; replays inside the window are recognised by the
message ids they repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Final

__all__ = [
    "SIGNATURE_HEADER",
    "SIGNATURE_PREFIX",
    "TIMESTAMP_HEADER",
    "SignatureError",
    "sign",
    "signature_headers",
    "verify",
]

TIMESTAMP_HEADER: Final = "X-Bridge-Timestamp"
SIGNATURE_HEADER: Final = "X-Bridge-Signature"
SIGNATURE_PREFIX: Final = "sha256="
_MAX_TIMESTAMP_DIGITS: Final = 12


class SignatureError(Exception):
    """The request is not signed right; the message says why, fit to be sent back to the caller."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Bridge-Signature` value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return SIGNATURE_PREFIX + mac.hexdigest()


def signature_headers(secret: str, body: bytes, *, now: Callable[[], float] = time.time) -> dict[str, str]:
    timestamp = str(int(now()))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)}


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    max_skew: float,
    now: Callable[[], float] = time.time,
) -> None:
    """Raise `SignatureError` unless `headers` sign `body` with `secret` at a time within `max_skew` seconds.

    `headers` is looked up with the canonical names; pass a case-insensitive mapping (every web framework's
    request headers are one).
    """
    timestamp = headers.get(TIMESTAMP_HEADER)
    signature = headers.get(SIGNATURE_HEADER)
    if timestamp is None or signature is None:
        missing = [name for name, value in ((TIMESTAMP_HEADER, timestamp), (SIGNATURE_HEADER, signature)) if not value]
        raise SignatureError(f"missing {' and '.join(missing)} header")
    timestamp = timestamp.strip()
    if not timestamp.isdigit() or not timestamp.isascii() or len(timestamp) > _MAX_TIMESTAMP_DIGITS:
        raise SignatureError(f"{TIMESTAMP_HEADER} must be the Unix time in whole seconds")
    age = now() - int(timestamp)
    if age > max_skew:
        raise SignatureError(f"{TIMESTAMP_HEADER} is {int(age)} s old, over the {max_skew:g} s allowed: replays are "
                             "refused (check the sender's clock)")
    if -age > max_skew:
        raise SignatureError(f"{TIMESTAMP_HEADER} is {int(-age)} s in the future, over the {max_skew:g} s allowed "
                             "(check the sender's clock)")
    expected = sign(secret, timestamp, body)
    if not hmac.compare_digest(signature.strip().lower().encode("ascii", "replace"), expected.encode("ascii")):
        raise SignatureError(f"{SIGNATURE_HEADER} does not match the body: expected sha256=<hex HMAC-SHA256 of "
                             '"{timestamp}.{body}" with the shared secret>')
