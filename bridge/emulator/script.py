"""The emulated agent's script: which replies follow which visitor message.

A script is a list of rules; the first rule whose `on` and `match`/`regex` fit the message wins, and a rule
with neither `match` nor `regex` fits everything (the default rule, put it last). A script file is YAML:

```yaml
- match: "price"        # exact text (`on: button`: the button's id or label; `on: file`: the file name)
  on: text                       # text | button | file; omitted = any
  reply:
    - {kind: operator, text: "It costs 10. You wrote: {text}"}
    - {kind: keyboard, buttons: [[{id: buy, text: Buy}, cancel]]}   # a bare string is both id and label
- regex: "^order \\d+$"          # re.search on the same subject
  reply: [{kind: file_operator, url: "{emulator}/files/sample.png", name: s.png, media_type: image/png}]
- on: file
  reply: [{kind: operator, text: "Got your file: {name}"}]
- reply: []                      # default: stay silent
```

Placeholders: `{text}` (what the agent sees: text, button label, or `file:{type}|{id}|{url}`), `{button}`,
`{button_id}`, `{name}`, `{url}`, `{type}`, `{file_id}` (the visitor's file), `{chat_id}`, `{emulator}` (the
emulator's base URL). Literal braces are doubled: `{{`. A `raw` step sends any body to any method, for trying
the bridge on what the platform might send one day: `{kind: raw, method: close_chat}`.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any, Literal

import msgspec

from bridge.emulator._yaml import YamlError, load_yaml
from bridge.emulator.inbound import VisitorEvent

__all__ = [
    "FileStep",
    "KeyboardStep",
    "OperatorStep",
    "RawStep",
    "ReplyCall",
    "Rule",
    "Script",
    "ScriptButton",
    "ScriptError",
    "Step",
    "default_script",
    "load_script",
    "long_text",
    "parse_script",
]

PLACEHOLDERS = frozenset({"text", "button", "button_id", "name", "url", "type", "file_id", "chat_id", "emulator"})
SAMPLE_FILE = "sample.txt"


class ScriptError(ValueError):
    """A script that cannot be used; the message names the file and the offending key."""


def _check_template(template: str) -> None:
    """Raise ValueError (msgspec adds the key path) for a placeholder the agent cannot fill."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"bad placeholder syntax in {template!r}: {exc} (write literal braces as {{{{ }}}})") from None
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in PLACEHOLDERS:
            known = ", ".join(sorted(f"{{{name}}}" for name in PLACEHOLDERS))
            raise ValueError(f"unknown placeholder {{{field}}} in {template!r}; known: {known}")
        if spec or conversion:
            raise ValueError(f"placeholder {{{field}}} in {template!r} takes no conversion or format spec")


def _render(template: str, values: dict[str, str]) -> str:
    return template.format_map(values)


class ScriptButton(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    text: str

    def __post_init__(self) -> None:
        _check_template(self.id)
        _check_template(self.text)


class OperatorStep(msgspec.Struct, tag="operator", tag_field="kind", forbid_unknown_fields=True):
    text: str

    def __post_init__(self) -> None:
        _check_template(self.text)


class KeyboardStep(msgspec.Struct, tag="keyboard", tag_field="kind", forbid_unknown_fields=True, kw_only=True):
    buttons: list[list[ScriptButton | str]]
    text: str | None = None

    def __post_init__(self) -> None:
        if not self.buttons or not all(self.buttons):
            raise ValueError("`buttons` must be a non-empty list of non-empty rows")
        for row in self.buttons:
            for button in row:
                if isinstance(button, str):
                    _check_template(button)
        if self.text is not None:
            _check_template(self.text)


class FileStep(msgspec.Struct, tag="file_operator", tag_field="kind", forbid_unknown_fields=True, kw_only=True):
    """A file as a link. Without `url`, the emulator's own `GET /files/sample.txt`, so nothing leaves the
    machine."""

    url: str | None = None
    name: str | None = None
    media_type: str | None = None
    size: int | None = None

    def __post_init__(self) -> None:
        for value in (self.url, self.name, self.media_type):
            if value is not None:
                _check_template(value)


class RawStep(msgspec.Struct, tag="raw", tag_field="kind", forbid_unknown_fields=True, kw_only=True):
    """`{"chat_id": ..., "message": message}` (no `message` key when omitted) POSTed to
    `{reply_url}/{method}`."""

    method: str = "send_message"
    message: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_]+", self.method):
            raise ValueError(f"`method` must be a bare method name like send_message, not {self.method!r}")


Step = OperatorStep | KeyboardStep | FileStep | RawStep
On = Literal["text", "button", "file"]


class ReplyCall(msgspec.Struct, frozen=True):
    """One call the agent makes: `{reply_url}/{method}` with `{"chat_id", "message"}`."""

    method: str
    message: dict[str, Any] | None


class Rule(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    match: str | None = None
    regex: str | None = None
    on: On | None = None
    reply: list[Step] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        if self.match is not None and self.regex is not None:
            raise ValueError("a rule has either `match` or `regex`, not both")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"`regex` {self.regex!r} does not compile: {exc}") from None

    def fits(self, event: VisitorEvent) -> bool:
        if self.on is not None and self.on != event.kind:
            return False
        subjects = _subjects(event)
        if self.match is not None:
            return self.match in subjects
        if self.regex is not None:
            return any(re.search(self.regex, subject) for subject in subjects)
        return True


def _subjects(event: VisitorEvent) -> tuple[str, ...]:
    if event.kind == "button":
        return tuple(s for s in (event.button_id, event.button_text) if s is not None)
    if event.kind == "file":
        return (event.file_name or "",)
    return (event.text,)


def _values(event: VisitorEvent, emulator_url: str) -> dict[str, str]:
    return {
        "text": event.text,
        "button": event.button_text or "",
        "button_id": event.button_id or "",
        "name": event.file_name or "",
        "url": event.file_url or "",
        "type": event.file_type or "",
        "file_id": event.file_id or "",
        "chat_id": str(event.chat_id),
        "emulator": emulator_url.rstrip("/"),
    }


def _button(button: ScriptButton | str, values: dict[str, str]) -> dict[str, str]:
    if isinstance(button, str):
        label = _render(button, values)
        return {"id": label, "text": label}
    return {"id": _render(button.id, values), "text": _render(button.text, values)}


def _call(step: Step, values: dict[str, str]) -> ReplyCall:
    if isinstance(step, OperatorStep):
        return ReplyCall("send_message", {"kind": "operator", "text": _render(step.text, values)})
    if isinstance(step, KeyboardStep):
        message: dict[str, Any] = {
            "kind": "keyboard",
            "buttons": [[_button(b, values) for b in row] for row in step.buttons],
        }
        if step.text is not None:
            message["text"] = _render(step.text, values)
        return ReplyCall("send_message", message)
    if isinstance(step, FileStep):
        data: dict[str, Any]
        if step.url is None:
            data = {
                "url": f"{values['emulator']}/files/{SAMPLE_FILE}",
                "name": SAMPLE_FILE,
                "media_type": "text/plain",
            }
        else:
            data = {"url": _render(step.url, values)}
        if step.name is not None:
            data["name"] = _render(step.name, values)
        if step.media_type is not None:
            data["media_type"] = _render(step.media_type, values)
        if step.size is not None:
            data["size"] = step.size
        return ReplyCall("send_message", {"kind": "file_operator", "data": data})
    return ReplyCall(step.method, step.message)


class Script(msgspec.Struct, forbid_unknown_fields=True):
    rules: list[Rule]

    def rule_for(self, event: VisitorEvent) -> Rule | None:
        return next((rule for rule in self.rules if rule.fits(event)), None)

    def calls_for(self, event: VisitorEvent, emulator_url: str) -> list[ReplyCall]:
        """The calls the agent makes for `event`, in order; none when no rule fits."""
        rule = self.rule_for(event)
        if rule is None:
            return []
        values = _values(event, emulator_url)
        return [_call(step, values) for step in rule.reply]


def parse_script(text: str, source: str = "<script>") -> Script:
    try:
        data = load_yaml(text, source)
    except YamlError as exc:
        raise ScriptError(str(exc)) from None
    if isinstance(data, dict) and set(data) == {"rules"}:
        data = data["rules"]
    if not isinstance(data, list):
        raise ScriptError(f"{source}: a script is a YAML list of rules (`- match: ...`)")
    try:
        rules = msgspec.convert(data, list[Rule])
    except msgspec.ValidationError as exc:
        raise ScriptError(f"{source}: {exc}") from None
    return Script(rules=rules)


def load_script(path: str | Path) -> Script:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScriptError(f"{path}: cannot read script: {exc.strerror or exc}") from None
    return parse_script(text, str(path))


def long_text(length: int = 5000) -> str:
    """`length` characters in numbered paragraphs ending in `[end]`, so a split reply shows where it broke."""
    end = " [end]"
    sentence = "This is a long reply from the emulated agent, written so that splitting can be seen. "
    paragraphs: list[str] = []
    while sum(len(p) + 2 for p in paragraphs) < length:
        paragraphs.append(f"Paragraph {len(paragraphs) + 1}. " + (sentence * 5).strip())
    return "\n\n".join(paragraphs)[: length - len(end)] + end


def default_script() -> Script:
    """Echo, a menu, a button press, a file both ways, a long text, and text followed by buttons."""
    yes_no: list[ScriptButton | str] = [ScriptButton("yes", "Yes"), ScriptButton("no", "No")]
    return Script(
        rules=[
            Rule(
                on="text",
                match="menu",
                reply=[
                    KeyboardStep(
                        text="What would you like to do?",
                        buttons=[yes_no, [ScriptButton("human", "Talk to a person")]],
                    )
                ],
            ),
            Rule(on="text", match="file", reply=[FileStep()]),
            Rule(on="text", match="long", reply=[OperatorStep(long_text())]),
            Rule(
                on="text",
                match="text+buttons",
                reply=[OperatorStep("Here are your options:"), KeyboardStep(buttons=[yes_no])],
            ),
            Rule(on="button", reply=[OperatorStep("You pressed: {button}")]),
            Rule(on="file", reply=[OperatorStep("Got your file: {name}")]),
            Rule(on="text", reply=[OperatorStep("You said: {text}")]),
        ]
    )
