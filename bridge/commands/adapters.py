"""`omnichannel-bridge adapters`: the installed adapters, each with its package's version and its config keys.

Meant for an operator writing a channel's `adapter:` block and for checking that a plugin package was installed
into the right environment. Every entry point of the group is listed, broken ones with the reason they cannot
be loaded (and exit status 1), never with a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Annotated, Any, Literal, TextIO, Union, get_args, get_origin

import msgspec

from bridge._errors import describe_error
from bridge.plugins import ENTRY_POINT_GROUP, AdapterLoadError, load_adapter

__all__ = ["HELP", "AdapterInfo", "ConfigKey", "add_arguments", "config_keys", "describe", "main", "type_name"]

HELP = "list the installed adapters with their version and config keys"

EXIT_OK = 0
EXIT_BROKEN = 1


@dataclass(frozen=True, slots=True)
class ConfigKey:
    key: str
    type: str
    required: bool
    default: Any = None


@dataclass(slots=True)
class AdapterInfo:
    name: str
    entry_point: str
    distribution: str | None
    version: str | None
    error: str | None = None
    config: list[ConfigKey] = field(default_factory=list)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def _strip(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def type_name(tp: Any) -> str:
    """A type as an operator reads it in a YAML file: `str`, `int | null`, `"bearer" | "hmac"`, `list[float]`."""
    tp = _strip(tp)
    origin = get_origin(tp)
    if tp is type(None):
        return "null"
    if origin is Literal:
        return " | ".join(json.dumps(value) for value in get_args(tp))
    if origin is Union or origin is types.UnionType:
        return " | ".join(type_name(arg) for arg in get_args(tp))
    if origin is not None:
        args = ", ".join(type_name(arg) for arg in get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if tp is Any:
        return "any"
    return str(getattr(tp, "__name__", tp))


def _struct_type(tp: Any) -> type[msgspec.Struct] | None:
    tp = _strip(tp)
    return tp if isinstance(tp, type) and issubclass(tp, msgspec.Struct) else None


def config_keys(struct: type[msgspec.Struct], prefix: str = "") -> list[ConfigKey]:
    """The keys of a config Struct with their types and defaults; nested Structs as dotted keys."""
    keys: list[ConfigKey] = []
    for info in msgspec.structs.fields(struct):
        key = prefix + info.encode_name
        nested = _struct_type(info.type)
        if nested is not None:
            keys.extend(config_keys(nested, f"{key}."))
            continue
        if info.required:
            keys.append(ConfigKey(key, type_name(info.type), True))
            continue
        default = info.default if info.default_factory is msgspec.NODEFAULT else info.default_factory()
        keys.append(ConfigKey(key, type_name(info.type), False, msgspec.to_builtins(default)))
    return keys


def describe(entry: EntryPoint) -> AdapterInfo:
    dist = getattr(entry, "dist", None)
    info = AdapterInfo(
        name=entry.name,
        entry_point=entry.value,
        distribution=dist.metadata["Name"] if dist is not None else None,
        version=dist.version if dist is not None else None,
    )
    try:
        adapter_cls = load_adapter(entry)
        info.config = config_keys(adapter_cls.config_type)
    except AdapterLoadError as exc:
        info.error = str(exc)
    except Exception as exc:  # a config_type that is no Struct, a default factory that fails...
        info.error = f"adapter {entry.name!r} ({entry.value}) cannot be described: {describe_error(exc)}"
    return info


def _render_default(key: ConfigKey) -> str:
    return "required" if key.required else json.dumps(key.default, ensure_ascii=False)


def print_text(adapters: list[AdapterInfo], out: TextIO) -> None:
    if not adapters:
        print(f"no adapters installed (no entry points in the group {ENTRY_POINT_GROUP!r})", file=out)
        return
    for index, adapter in enumerate(adapters):
        if index:
            print(file=out)
        package = f"{adapter.distribution or 'unknown package'} {adapter.version or ''}".rstrip()
        print(f"{adapter.name}  ({package}, {adapter.entry_point})", file=out)
        if adapter.error is not None:
            print(f"  error: {adapter.error}", file=out)
            continue
        if not adapter.config:
            print("  (no config keys)", file=out)
        key_width = max((len(k.key) for k in adapter.config), default=0)
        type_width = max((len(k.type) for k in adapter.config), default=0)
        for key in adapter.config:
            print(f"  {key.key:<{key_width}}  {key.type:<{type_width}}  {_render_default(key)}".rstrip(), file=out)


def main(args: argparse.Namespace) -> int:
    found = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name, e.value))
    adapters = [describe(entry) for entry in found]
    if args.json:
        print(json.dumps([msgspec.to_builtins(a) for a in adapters], indent=2, ensure_ascii=False), file=sys.stdout)
    else:
        print_text(adapters, sys.stdout)
    return EXIT_BROKEN if any(a.error is not None for a in adapters) else EXIT_OK
