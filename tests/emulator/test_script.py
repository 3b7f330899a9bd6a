"""Agent scripts: strict YAML loading, matching, placeholders, and replacing the default script."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from bridge.emulator import (
    EmulatorConfig,
    Script,
    ScriptError,
    default_script,
    load_script,
    long_text,
    parse_script,
    run_emulator,
)
from bridge.emulator.inbound import VisitorEvent
from tests.emulator.conftest import HEADER_TOKEN, channels_for
from tests.emulator.helpers import FakeBridge, new_message

EMULATOR = "http://127.0.0.1:1234"

SCRIPT = r"""
- match: price
  on: text
  reply:
    - {kind: operator, text: "It costs 10 (you wrote {text}, chat {chat_id})"}
    - kind: keyboard
      buttons: [[{id: buy, text: "Buy it"}, no], [yes]]
- regex: "^order (\\d+)$"
  reply:
    - {kind: file_operator, url: "{emulator}/files/sample.png", name: order.png, media_type: image/png, size: 67}
- on: button
  match: buy
  reply: [{kind: operator, text: "Bought via {button_id} ({button})"}]
- on: file
  regex: "\\.pdf$"
  reply:
    - {kind: operator, text: "{type} {file_id} {name} {url}"}
    - {kind: raw, method: close_chat}
- on: text
  reply: [{kind: raw, message: {kind: info, text: "literal {{braces}}"}}]
"""


def text_event(text: str) -> VisitorEvent:
    return VisitorEvent(chat_id=5, visitor_id="v", message_id="m", kind="text", text=text)


def button_event(button_id: str, label: str) -> VisitorEvent:
    return VisitorEvent(
        chat_id=5, visitor_id="v", message_id="m", kind="button", text=label, button_id=button_id, button_text=label
    )


def file_event(name: str) -> VisitorEvent:
    return VisitorEvent(
        chat_id=5,
        visitor_id="v",
        message_id="m",
        kind="file",
        text=f"file:document|f1|http://x/{name}",
        file_id="f1",
        file_name=name,
        file_type="document",
        file_url=f"http://x/{name}",
    )


def messages(script: Script, event: VisitorEvent) -> list[tuple[str, object]]:
    return [(call.method, call.message) for call in script.calls_for(event, EMULATOR + "/")]


def test_rules_match_and_fill_placeholders() -> None:
    script = parse_script(SCRIPT)

    assert messages(script, text_event("price")) == [
        ("send_message", {"kind": "operator", "text": "It costs 10 (you wrote price, chat 5)"}),
        (
            "send_message",
            {
                "kind": "keyboard",
                "buttons": [
                    [{"id": "buy", "text": "Buy it"}, {"id": "no", "text": "no"}],
                    [{"id": "yes", "text": "yes"}],
                ],
            },
        ),
    ]
    assert messages(script, text_event("order 12")) == [
        (
            "send_message",
            {
                "kind": "file_operator",
                "data": {
                    "url": f"{EMULATOR}/files/sample.png",
                    "name": "order.png",
                    "media_type": "image/png",
                    "size": 67,
                },
            },
        )
    ]
    assert messages(script, button_event("buy", "Buy it")) == [
        ("send_message", {"kind": "operator", "text": "Bought via buy (Buy it)"})
    ]
    assert messages(script, file_event("a.pdf")) == [
        ("send_message", {"kind": "operator", "text": "document f1 a.pdf http://x/a.pdf"}),
        ("close_chat", None),
    ]


def test_first_fitting_rule_wins_and_nothing_fits_means_silence() -> None:
    script = parse_script(SCRIPT)

    # "price" also fits the last catch-all text rule; the first rule wins.
    assert len(messages(script, text_event("price"))) == 2
    assert messages(script, text_event("something else")) == [
        ("send_message", {"kind": "info", "text": "literal {{braces}}"})
    ]
    # `match` is exact; a button is matched by id or label, a file by name.
    assert messages(script, text_event("price!"))[0][1] == {"kind": "info", "text": "literal {{braces}}"}
    assert messages(script, button_event("x", "buy")) != []
    assert messages(script, button_event("other", "Other")) == []
    assert messages(script, file_event("photo.jpg")) == []


def test_yaml_1_1_booleans_do_not_eat_on_and_yes() -> None:
    script = parse_script("- on: button\n  match: yes\n  reply: [{kind: keyboard, buttons: [[yes, no, off]]}]\n")

    rule = script.rules[0]
    assert (rule.on, rule.match) == ("button", "yes")
    [(_, message)] = messages(script, button_event("yes", "Yes"))
    assert message == {
        "kind": "keyboard",
        "buttons": [[{"id": "yes", "text": "yes"}, {"id": "no", "text": "no"}, {"id": "off", "text": "off"}]],
    }


def test_a_rules_mapping_is_accepted_too() -> None:
    assert parse_script("rules:\n  - reply: []\n").rules[0].reply == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- match: a\n  colour: red\n  reply: []\n", "unknown field `colour` - at `$[0]`"),
        ("- reply: [{kind: operator, txt: hi}]\n", "unknown field `txt` - at `$[0].reply[0]`"),
        ("- reply: [{kind: sticker}]\n", "Invalid value 'sticker' - at `$[0].reply[0].kind`"),
        ("- reply: [{text: hi}]\n", "missing required field `kind`"),
        ("- on: voice\n  reply: []\n", "at `$[0].on`"),
        ("- match: a\n  regex: b\n  reply: []\n", "either `match` or `regex`"),
        ("- regex: '('\n  reply: []\n", "does not compile"),
        ("- reply: [{kind: operator, text: 'hi {user}'}]\n", "unknown placeholder {user}"),
        ("- reply: [{kind: operator, text: 'hi {text!r}'}]\n", "{text} in 'hi {text!r}' takes no conversion"),
        ("- reply: [{kind: operator, text: 'hi {'}]\n", "bad placeholder syntax"),
        ("- reply: [{kind: keyboard, buttons: []}]\n", "non-empty list"),
        ("- reply: [{kind: raw, method: ../admin}]\n", "bare method name"),
        ("match: a\n", "a script is a YAML list of rules"),
        ("- [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_scripts_are_refused_with_the_key_named(text: str, expected: str) -> None:
    with pytest.raises(ScriptError) as raised:
        parse_script(text, "agent.yaml")
    message = str(raised.value)
    assert message.startswith("agent.yaml: ")
    assert expected in message


def test_load_script_reads_a_file_and_names_a_missing_one(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(SCRIPT, encoding="utf-8")
    assert len(load_script(path).rules) == 5

    with pytest.raises(ScriptError, match=r"nope\.yaml: cannot read script"):
        load_script(tmp_path / "nope.yaml")


def test_default_script_shape() -> None:
    script = default_script()

    assert messages(script, text_event("hi")) == [("send_message", {"kind": "operator", "text": "You said: hi"})]
    # The default echo does not trip over braces in what the visitor wrote.
    assert messages(script, text_event("{text} {0}"))[0][1] == {"kind": "operator", "text": "You said: {text} {0}"}
    assert len(long_text()) == 5000 and len(long_text(1200)) == 1200


async def test_a_script_file_replaces_the_default_end_to_end(
    tmp_path: Path, fake_bridge: FakeBridge, http: aiohttp.ClientSession
) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(SCRIPT, encoding="utf-8")
    config = EmulatorConfig(channels=channels_for(fake_bridge), script=load_script(path))

    async with run_emulator(config) as platform:
        for text in ("order 7", "anything"):
            async with http.post(platform.webhook_url(HEADER_TOKEN), json=new_message(text)) as response:
                assert response.status == 200
        seen = await fake_bridge.wait_for(2)

        assert seen[0].body["message"]["data"]["url"] == platform.file_url("sample.png")
        assert seen[1].path == "/platform/header/send_message"
        assert seen[1].body == {"chat_id": 42, "message": {"kind": "info", "text": "literal {{braces}}"}}

        # Swapped at runtime, e.g. by a test that needs another agent.
        platform.set_script(parse_script("- reply: [{kind: raw, method: close_chat}]\n"))
        async with http.post(platform.webhook_url(HEADER_TOKEN), json=new_message("bye")) as response:
            assert response.status == 200
        seen = await fake_bridge.wait_for(3)
    assert (seen[2].path, seen[2].body) == ("/platform/header/close_chat", {"chat_id": 42})
