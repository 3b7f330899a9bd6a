"""The platform's reading of a `new_message` body, answer for answer as the public API documents it.

Deliberately *not* built on `bridge.protocol`'s Structs: those are the bridge's own idea of the format, and an
emulator that shared them could never catch the bridge getting it wrong. This walks the raw JSON the way the
platform's table describes:

- body not JSON, or not an object → 500 ("incorrect JSON: other errors");
- a required parameter absent (or null) → 400 naming it;
- a parameter of the wrong JSON type → 500 (also "other errors");
- an unknown `event` or `kind` → 200, ignored;
- a `file_visitor` whose `data.state` is not `ready` → 200, ignored (the platform only acts on `ready`).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = [
    "Ignored",
    "Rejected",
    "VisitorEvent",
    "agent_file_text",
    "decode_json",
    "examine_new_message",
    "file_type",
    "subject_text",
]

EventKind = Literal["text", "button", "file"]


class Rejected(Exception):
    """The request is refused with `status` and a JSON body `{"error": error}`."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


class Ignored(msgspec.Struct, frozen=True):
    """Answered 200 but not acted on, as the platform does for an unknown event or kind."""

    reason: str


class VisitorEvent(msgspec.Struct, frozen=True, kw_only=True):
    """What the agent sees of one accepted message."""

    chat_id: int
    visitor_id: str
    message_id: str
    kind: EventKind
    # The text the agent's script receives: the visitor's text, the button's label (the platform's table:
    # "clicking the button comes as button label text"), or `file:{type}|{id}|{url}`.
    text: str
    button_id: str | None = None
    button_text: str | None = None
    file_id: str | None = None
    file_name: str | None = None
    file_type: str | None = None
    file_url: str | None = None


def file_type(content_type: str) -> str:
    """The `{file_type}` of `file:{file_type}|{file_id}|{file_url}`.

    The public API names the format but not its values; the emulator uses the media type's top-level family
    for the three that messengers treat specially (`image`, `video`, `audio`) and `document` for everything
    else, which is what agents in practice branch on.
    """
    family = content_type.split("/", 1)[0].strip().lower()
    return family if family in {"image", "video", "audio"} else "document"


def agent_file_text(kind: str, file_id: str, url: str) -> str:
    return f"file:{kind}|{file_id}|{url}"


def _missing(path: str) -> Rejected:
    return Rejected(400, f"Missing required parameter: {path}")


def _wrong_type(path: str, expected: str) -> Rejected:
    return Rejected(500, f"Malformed request: `{path}` must be {expected}")


def _required(obj: dict[str, Any], key: str, path: str) -> Any:
    value = obj.get(key)
    if value is None:
        raise _missing(path)
    return value


def _str(obj: dict[str, Any], key: str, path: str) -> str:
    value = _required(obj, key, path)
    if not isinstance(value, str):
        raise _wrong_type(path, "a string")
    return value


def _int(obj: dict[str, Any], key: str, path: str) -> int:
    value = _required(obj, key, path)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(path, "an integer")
    return value


def _obj(obj: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    value = _required(obj, key, path)
    if not isinstance(value, dict):
        raise _wrong_type(path, "an object")
    return value


def _check_fields(visitor: dict[str, Any]) -> None:
    fields = visitor.get("fields")
    if fields is None:
        return
    if not isinstance(fields, dict):
        raise _wrong_type("visitor.fields", "an object")
    for name, value in fields.items():
        if value is not None and not isinstance(value, str):
            raise _wrong_type(f"visitor.fields.{name}", "a string")


def decode_json(body: bytes) -> Any:
    """The body as JSON, or `Rejected(500)`; kept apart so the caller can record what arrived either way."""
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise Rejected(500, f"Malformed request: body is not valid JSON ({exc})") from None


def examine_new_message(data: Any) -> VisitorEvent | Ignored:
    """Read a decoded body as the platform would; raise `Rejected` for the error answers."""
    if not isinstance(data, dict):
        raise Rejected(500, "Malformed request: body must be a JSON object")
    event = _str(data, "event", "event")
    if event != "new_message":
        return Ignored(f"unknown event {event!r}")
    chat_id = _int(data, "chat_id", "chat_id")
    visitor = _obj(data, "visitor", "visitor")
    visitor_id = _str(visitor, "id", "visitor.id")
    _check_fields(visitor)
    message = _obj(data, "message", "message")
    message_id = _str(message, "id", "message.id")
    kind = _str(message, "kind", "message.kind")
    common: dict[str, Any] = {"chat_id": chat_id, "visitor_id": visitor_id, "message_id": message_id}
    if kind == "visitor":
        return VisitorEvent(kind="text", text=_str(message, "text", "message.text"), **common)
    if kind == "keyboard_response":
        press = _obj(message, "data", "message.data")
        button = _obj(press, "button", "message.data.button")
        button_id = _str(button, "id", "message.data.button.id")
        label = _str(button, "text", "message.data.button.text")
        return VisitorEvent(kind="button", text=label, button_id=button_id, button_text=label, **common)
    if kind == "file_visitor":
        file = _obj(message, "data", "message.data")
        file_id = _str(file, "id", "message.data.id")
        state = _str(file, "state", "message.data.state")
        name = _str(file, "name", "message.data.name")
        content_type = _str(file, "content_type", "message.data.content_type")
        _int(file, "size", "message.data.size")
        url = _str(file, "url", "message.data.url")
        if state != "ready":
            return Ignored(f"file state is {state!r}, not 'ready'")
        family = file_type(content_type)
        return VisitorEvent(
            kind="file",
            text=agent_file_text(family, file_id, url),
            file_id=file_id,
            file_name=name,
            file_type=family,
            file_url=url,
            **common,
        )
    return Ignored(f"unknown message kind {kind!r}")


def subject_text(data: Any) -> str | None:
    """The human-visible text of a body, best effort, for fault rules matching on text; never raises."""
    if not isinstance(data, dict):
        return None
    message = data.get("message")
    if not isinstance(message, dict):
        return None
    text = message.get("text")
    if isinstance(text, str):
        return text
    inner = message.get("data")
    if isinstance(inner, dict):
        button = inner.get("button")
        if isinstance(button, dict) and isinstance(button.get("text"), str):
            return str(button["text"])
        if isinstance(inner.get("name"), str):
            return str(inner["name"])
    return None
