"""Strict msgspec decoding that reports every schema problem, not only the first.

msgspec stops at the first error. To list them all, the decoder repairs the input after each error (drops
the unknown or ill-typed key, so the field's default applies) and tries again, until the value decodes or an
error cannot be repaired (a required key is missing or unusable).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from types import MappingProxyType
from typing import Any, NamedTuple

import msgspec
import msgspec.inspect as mi
import yaml

from bridge._config.problems import KeyPath, Problem

__all__ = ["Decoded", "decode", "humanize", "plain_copy"]

_ERROR = re.compile(r"(?P<message>.*?) - at (?P<key>`key` in )?`\$(?P<path>[^`]*)`", re.DOTALL)
_SEGMENT = re.compile(r"\.(?P<name>[^.\[\]]+)|\[(?P<index>\d+)\]|\[(?P<any>\.\.\.)\]")
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<name>[^`]*)`")
_MISSING = re.compile(r"Object missing required field `(?P<name>[^`]*)`")
_GOT_STR = re.compile(r"Expected `[^`]+`, got `str`")
_QUOTED = re.compile(r"`([^`]*)`")
# msgspec speaks JSON; operators write YAML.
_TYPE_NAMES = MappingProxyType({"object": "mapping", "array": "list"})
_MAX_REPAIRS = 1000
_INVALID_CHOICE = re.compile(r"Invalid enum value .*", re.DOTALL)


def humanize(message: str) -> str:
    """`Expected \\`int\\`, got \\`str\\`` → `expected int, got str`."""
    text = _QUOTED.sub(lambda m: _TYPE_NAMES.get(m.group(1), m.group(1)), message)
    return text[:1].lower() + text[1:]


def plain_copy(value: Any) -> Any:
    """A deep copy that never shares containers (unlike `copy.deepcopy`, which keeps YAML aliases shared)."""
    if isinstance(value, dict):
        return {key: plain_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_copy(item) for item in value]
    return value


def _parse_path(text: str) -> KeyPath:
    segments: list[str | int] = []
    for match in _SEGMENT.finditer(text):
        if match.group("name") is not None:
            segments.append(match.group("name"))
        elif match.group("index") is not None:
            segments.append(int(match.group("index")))
        else:
            break  # a value inside a typed mapping: msgspec does not say which key, stop at the mapping
    return tuple(segments)


def _lookup(data: Any, path: KeyPath) -> tuple[bool, Any]:
    for segment in path:
        if isinstance(segment, int) and isinstance(data, list) and 0 <= segment < len(data):
            data = data[segment]
        elif isinstance(segment, str) and isinstance(data, dict) and segment in data:
            data = data[segment]
        else:
            return False, None
    return True, data


def _drop(data: Any, path: KeyPath) -> KeyPath | None:
    """Remove the innermost mapping key on `path` (a bad list item takes its whole list along, so that the
    indexes of later messages stay true). Returns the removed key's path, None when nothing can be removed."""
    for cut in range(len(path), 0, -1):
        key = path[cut - 1]
        found, parent = _lookup(data, path[: cut - 1])
        if found and isinstance(key, str) and isinstance(parent, dict) and key in parent:
            del parent[key]
            return path[:cut]
    return None


def _choices(type_: Any, where: KeyPath) -> list[Any] | None:
    """The values allowed at `where` when the schema lists them (a Literal or an Enum), for the message."""
    info: mi.Type = mi.type_info(type_)
    for segment in where:
        while isinstance(info, mi.UnionType | mi.Metadata):
            if isinstance(info, mi.Metadata):
                info = info.type
                continue
            wanted = mi.StructType if isinstance(segment, str) else mi.ListType | mi.TupleType | mi.SetType
            options = [option for option in info.types if isinstance(option, wanted)]
            if len(options) != 1:
                return None
            info = options[0]
        if isinstance(segment, str) and isinstance(info, mi.StructType):
            field = next((f for f in info.fields if f.encode_name == segment), None)
            if field is None:
                return None
            info = field.type
        elif isinstance(segment, int) and isinstance(info, mi.ListType | mi.SetType | mi.FrozenSetType):
            info = info.item_type
        else:
            return None
    for option in info.types if isinstance(info, mi.UnionType) else (info,):
        if isinstance(option, mi.Metadata):
            option = option.type
        if isinstance(option, mi.LiteralType):
            return list(option.values)
        if isinstance(option, mi.EnumType):
            return [member.value for member in option.cls]
    return None


def _coerce_scalar(text: str) -> tuple[bool, Any]:
    """Read an interpolated string the way YAML would have read it unquoted (`8080` → 8080, `true` → True)."""
    if not text.strip():
        return False, None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return False, None
    if value is None or isinstance(value, bool | int | float):
        return True, value
    return False, None


class Decoded(NamedTuple):
    """`value` is None when the input could not be decoded; `data` is the input as decoded, with the
    interpolated strings that were read as numbers or booleans replaced by those."""

    value: Any
    problems: list[Problem]
    data: Any


def decode(
    data: Any,
    type_: Any,
    prefix: KeyPath = (),
    *,
    from_env: Collection[KeyPath] = (),
) -> Decoded:
    """Decode `data` into `type_` strictly; returns the value (None when unrecoverable) and the problems.

    Paths in problems are `prefix` + the location inside `data`. Strings at paths in `from_env` came from
    `${VAR}` interpolation and are read as YAML scalars when the schema wants a number or a boolean.
    """
    work = plain_copy(data)
    problems: list[Problem] = []
    dropped: set[KeyPath] = set()
    coerced: set[KeyPath] = set()
    for _ in range(_MAX_REPAIRS):
        try:
            return Decoded(msgspec.convert(work, type=type_), problems, work)
        except msgspec.ValidationError as exc:
            error = str(exc)
        match = _ERROR.fullmatch(error)
        message, where = (match.group("message"), _parse_path(match.group("path"))) if match else (error, ())
        if match and match.group("key"):
            found, mapping = _lookup(work, where)
            bad = (
                [key for key in mapping if not isinstance(key, str)]
                if found and isinstance(mapping, dict)
                else []
            )
            for key in bad:
                problems.append(Problem.at((*prefix, *where), f"key {key!r} must be a string"))
                del mapping[key]
            if bad:
                continue
            problems.append(Problem.at((*prefix, *where), f"keys: {humanize(message)}"))
            return Decoded(None, problems, work)
        if unknown := _UNKNOWN.fullmatch(message):
            key_path = (*where, unknown.group("name"))
            problems.append(Problem.at((*prefix, *key_path), "unknown key"))
            if _drop(work, key_path) is None:
                return Decoded(None, problems, work)
            continue
        if missing := _MISSING.fullmatch(message):
            key_path = (*where, missing.group("name"))
            if key_path not in dropped:  # else its real problem is already reported
                problems.append(Problem.at((*prefix, *key_path), "required key is missing"))
            return Decoded(None, problems, work)
        full = (*prefix, *where)
        if _GOT_STR.fullmatch(message) and full in from_env and where not in coerced:
            coerced.add(where)
            found, text = _lookup(work, where)
            ok, value = _coerce_scalar(text) if found and isinstance(text, str) else (False, None)
            if ok and where:
                _lookup(work, where[:-1])[1][where[-1]] = value
                continue
        text = humanize(message)
        if _INVALID_CHOICE.fullmatch(message) and (choices := _choices(type_, where)):
            text += f" (expected one of {', '.join(map(repr, choices))})"
        problems.append(Problem.at(full, text))
        removed = _drop(work, where)
        if removed is None:
            return Decoded(None, problems, work)
        dropped.add(removed)
    problems.append(Problem.at(prefix, "too many problems to list"))
    return Decoded(None, problems, work)
