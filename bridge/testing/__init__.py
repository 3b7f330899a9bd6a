"""Helpers for testing the bridge and adapters against real loopback servers.

The conformance suite (`AdapterConformance` and its record type) needs pytest; it is imported on first use, so
that importing `bridge.testing.server` alone does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bridge.testing.conformance import AdapterConformance, FailureKind
    from bridge.testing.conformance_checks import ConformanceFailure, MessengerRecord

__all__ = ["AdapterConformance", "ConformanceFailure", "FailureKind", "MessengerRecord"]

_LAZY = {
    "AdapterConformance": "bridge.testing.conformance",
    "FailureKind": "bridge.testing.conformance",
    "ConformanceFailure": "bridge.testing.conformance_checks",
    "MessengerRecord": "bridge.testing.conformance_checks",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bridge.testing' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
