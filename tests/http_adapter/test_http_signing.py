"""HMAC signatures of the HTTP adapter, against values computed independently of `adapters.http.signing`."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from adapters.http.signing import SignatureError, sign, signature_headers, verify

SECRET = "shared-secret-0123456789"
BODY = b'{"chat_id":"c","message_id":"m","text":"hi"}'


def independent(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def test_sign_matches_the_documented_construction() -> None:
    assert sign(SECRET, "1767225600", BODY) == independent(SECRET, "1767225600", BODY)


def test_signature_headers_verify_round_trip() -> None:
    headers = signature_headers(SECRET, BODY, now=lambda: 1767225600.9)
    assert headers["X-Bridge-Timestamp"] == "1767225600"
    verify(SECRET, headers, BODY, max_skew=300, now=lambda: 1767225600 + 300)


@pytest.mark.parametrize(
    ("headers", "body", "now", "says"),
    [
        ({"X-Bridge-Timestamp": "1000"}, BODY, 1000, "missing X-Bridge-Signature header"),
        ({"X-Bridge-Timestamp": "1000", "X-Bridge-Signature": independent(SECRET, "1000", BODY)}, BODY, 1301,
         "301 s old"),
        ({"X-Bridge-Timestamp": "1000", "X-Bridge-Signature": independent(SECRET, "1000", BODY)}, BODY, 600,
         "400 s in the future"),
        ({"X-Bridge-Timestamp": "1000", "X-Bridge-Signature": independent(SECRET, "1000", BODY)}, BODY + b" ", 1000,
         "does not match"),
        ({"X-Bridge-Timestamp": "1000", "X-Bridge-Signature": independent("other", "1000", BODY)}, BODY, 1000,
         "does not match"),
        # The timestamp is part of what is signed: a fresh timestamp on an old signature does not match.
        ({"X-Bridge-Timestamp": "1001", "X-Bridge-Signature": independent(SECRET, "1000", BODY)}, BODY, 1000,
         "does not match"),
        ({"X-Bridge-Timestamp": "-5", "X-Bridge-Signature": "sha256=00"}, BODY, 1000, "whole seconds"),
        ({"X-Bridge-Timestamp": "1e3", "X-Bridge-Signature": "sha256=00"}, BODY, 1000, "whole seconds"),
    ],
)
def test_verify_refuses_with_a_reason(headers: dict[str, str], body: bytes, now: float, says: str) -> None:
    with pytest.raises(SignatureError, match=says):
        verify(SECRET, headers, body, max_skew=300, now=lambda: now)


def test_uppercase_hex_is_accepted() -> None:
    signature = independent(SECRET, "1000", BODY).upper().replace("SHA256=", "sha256=")
    verify(SECRET, {"X-Bridge-Timestamp": "1000", "X-Bridge-Signature": signature}, BODY, max_skew=300,
           now=lambda: 1000)
