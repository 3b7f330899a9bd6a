"""Adapter discovery through the `omnichannel_bridge.adapters` entry-point group.

Built-in adapters are registered the same way as third-party ones, so there is one path for both.
"""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint, entry_points

from bridge.adapter import Adapter

__all__ = ["ENTRY_POINT_GROUP", "AdapterLoadError", "discover_adapters", "load_adapter"]

ENTRY_POINT_GROUP = "omnichannel_bridge.adapters"

log = logging.getLogger("bridge.plugins")


class AdapterLoadError(Exception):
    pass


def _load(entry: EntryPoint) -> type[Adapter]:  # type: ignore[type-arg]
    try:
        adapter_cls = entry.load()
    except Exception as exc:
        raise AdapterLoadError(f"adapter {entry.name!r} ({entry.value}) failed to import: {exc}") from exc
    if not (isinstance(adapter_cls, type) and issubclass(adapter_cls, Adapter)):
        raise AdapterLoadError(f"adapter {entry.name!r} ({entry.value}) is not a subclass of bridge.Adapter")
    if not hasattr(adapter_cls, "config_type"):
        raise AdapterLoadError(f"adapter {entry.name!r} ({entry.value}) declares no config_type")
    return adapter_cls


def load_adapter(entry: EntryPoint) -> type[Adapter]:  # type: ignore[type-arg]
    """Import one entry point's adapter class; raise `AdapterLoadError` saying why it is not usable."""
    return _load(entry)


def discover_adapters(*, strict: bool = False) -> dict[str, type[Adapter]]:  # type: ignore[type-arg]
    """Installed adapters by name. A broken plugin is logged and left out, so one bad package does not stop
    a bridge that does not use it; `strict=True` raises instead (for `omnichannel-bridge adapters`)."""
    found: dict[str, type[Adapter]] = {}  # type: ignore[type-arg]
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            found[entry.name] = _load(entry)
        except AdapterLoadError as exc:
            if strict:
                raise
            log.error("%s", exc)
    return found
