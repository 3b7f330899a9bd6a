"""How an exception is named in a one-line reason (logs, readiness details, refusals)."""

from __future__ import annotations

__all__ = ["describe_error"]


def describe_error(exc: BaseException) -> str:
    """`Type: message`, or just `Type` when the message is empty (a bare `TimeoutError()` says nothing more)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
