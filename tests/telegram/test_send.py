"""Outbound through PTB to the fake Bot API: texts, keyboards, files, failures and their classification."""

from __future__ import annotations

import pytest

from adapters.telegram import TelegramAdapter
from bridge.adapter import PermanentSendError, RetryableSendError
from bridge.messages import Outbound, OutboundContent, OutboundFile, OutboundKeyboard, OutboundText
from bridge.protocol import Button
from bridge.store.keyvalue import StoreKeyValue
from bridge.testing.telegram import FakeTelegram, run_fake_telegram
from bridge.text import text_length
from tests.telegram.conftest import MakeAdapter

# PTB warns about its own RetryAfter type when it builds one from a 429; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

URL = "https://bridge.example/files/abc/report"


def out(content: OutboundContent, chat: str = "42", message_id: str = "m-1") -> Outbound:
    return Outbound(chat_id=1, native_chat_id=chat, message_id=message_id, content=content)


def keyboard(*rows: list[str], text: str | None = None) -> OutboundKeyboard:
    return OutboundKeyboard(rows=[[Button(b, b.title()) for b in row] for row in rows], text=text)


def layout(message: dict[str, object]) -> list[list[str]]:
    markup = message["reply_markup"]
    assert isinstance(markup, dict)
    return [[b["callback_data"] for b in row] for row in markup["inline_keyboard"]]


async def test_text_is_sent_plain(tg: FakeTelegram, adapter: TelegramAdapter) -> None:
    await adapter.send(out(OutboundText("*not bold* _x_ <b>y</b>")))
    (call,) = tg.calls_to("sendMessage")
    assert call.params == {"chat_id": 42, "text": "*not bold* _x_ <b>y</b>"}


async def test_overlong_text_is_split_in_utf16_units(tg: FakeTelegram, adapter: TelegramAdapter) -> None:
    text = ("Emoji \U0001f600\U0001f600\U0001f600\U0001f600\U0001f600 here. " * 200).strip()  # 3599 code points
    assert len(text) < 4096 < text_length(text, "utf16")
    await adapter.send(out(OutboundText(text)))
    parts = [c.params["text"] for c in tg.calls_to("sendMessage")]
    assert len(parts) == 2
    assert all(text_length(p, "utf16") <= 4096 for p in parts)
    assert parts[0].endswith("here.")
    assert " ".join(parts) == text


async def test_retry_after_a_failed_part_sends_only_the_rest(tg: FakeTelegram, adapter: TelegramAdapter) -> None:
    text = "A" * 4000 + "\n\n" + "B" * 4000 + "\n\n" + "C" * 100
    tg.fail("sendMessage", error_code=500, after=1)  # the first part goes out, the second fails
    with pytest.raises(RetryableSendError):
        await adapter.send(out(OutboundText(text)))
    assert [m["text"][0] for m in tg.sent_to(42)] == ["A"]
    await adapter.send(out(OutboundText(text)))
    assert [m["text"][0] for m in tg.sent_to(42)] == ["A", "B", "C"]
    # Delivered again after success (a crash before the queue's ack): nothing is sent twice.
    await adapter.send(out(OutboundText(text)))
    assert len(tg.sent_to(42)) == 3


async def test_keyboard_rows_kept_and_wide_rows_wrapped(tg: FakeTelegram, adapter: TelegramAdapter) -> None:
    wide = [f"b{i}" for i in range(10)]
    await adapter.send(out(keyboard(["yes", "no"], wide, text="Pick one")))
    (message,) = tg.sent_to(42)
    assert message["text"] == "Pick one"
    assert layout(message) == [["yes", "no"], wide[:8], wide[8:]]
    assert message["reply_markup"]["inline_keyboard"][0][0]["text"] == "Yes"


async def test_keyboard_without_text_attaches_to_the_last_message(tg: FakeTelegram, adapter: TelegramAdapter) -> None:
    await adapter.send(out(OutboundText("Do you want tea?"), message_id="m-1"))
    await adapter.send(out(keyboard(["yes", "no"]), message_id="m-2"))
    (edit,) = tg.calls_to("editMessageReplyMarkup")
    (message,) = tg.sent_to(42)
    assert edit.params["message_id"] == message["message_id"]
    assert message["text"] == "Do you want tea?"
    assert layout(message) == [["yes", "no"]]
    # A second keyboard must not replace the first: it goes with the prompt.
    await adapter.send(out(keyboard(["later"]), message_id="m-3"))
    prompt = tg.sent_to(42)[-1]
    assert (prompt["text"], layout(prompt)) == ("Please choose:", [["later"]])
    # Redelivered keyboard message: not attached or sent again.
    await adapter.send(out(keyboard(["yes", "no"]), message_id="m-2"))
    assert len(tg.calls_to("editMessageReplyMarkup")) == 1
    assert len(tg.sent_to(42)) == 2


async def test_keyboard_without_text_and_nothing_recent_gets_the_prompt(tg: FakeTelegram,
                                                                        make_adapter: MakeAdapter) -> None:
    adapter = await make_adapter(keyboard_attach_window=0.0, keyboard_prompt="Your choice?")
    await adapter.send(out(keyboard(["a"]), chat="43", message_id="k-0"))  # no earlier message at all
    await adapter.send(out(OutboundText("hello"), message_id="m-1"))
    await adapter.send(out(keyboard(["a"]), message_id="m-2"))  # too old for a zero window
    assert tg.calls_to("editMessageReplyMarkup") == []
    assert [m.get("text") for m in tg.sent_to(42)] == ["hello", "Your choice?"]
    assert tg.sent_to(43)[0]["text"] == "Your choice?"


async def test_attach_refused_falls_back_to_the_prompt(tg: FakeTelegram, adapter: TelegramAdapter) -> None:
    await adapter.send(out(OutboundText("hello"), message_id="m-1"))
    tg.fail("editMessageReplyMarkup", error_code=400, description="Bad Request: message to edit not found")
    await adapter.send(out(keyboard(["a"]), message_id="m-2"))
    assert [m["text"] for m in tg.sent_to(42)] == ["hello", "Please choose:"]


async def test_long_button_ids_use_stored_tokens(tg: FakeTelegram, adapter: TelegramAdapter,
                                                 kv: StoreKeyValue) -> None:
    long_id = "product/" + "9" * 70
    await adapter.send(out(keyboard([long_id, "short"], text="Menu")))
    ((token, short),) = layout(tg.sent_to(42)[0])
    assert short == "short"
    assert len(token.encode()) <= 64 and token.startswith("~t:")
    assert await kv.get(f"cb:{token[3:]}") == long_id.encode()


@pytest.mark.parametrize(
    ("content_type", "name", "method", "field"),
    [
        ("image/jpeg", "a.jpg", "sendPhoto", "photo"),
        ("video/mp4", "clip.mp4", "sendVideo", "video"),
        ("audio/mpeg", "song.mp3", "sendAudio", "audio"),
        ("application/pdf", "report.pdf", "sendDocument", "document"),
    ],
)
async def test_files_by_url_by_content_type(tg: FakeTelegram, adapter: TelegramAdapter, content_type: str,
                                            name: str, method: str, field: str) -> None:
    await adapter.send(out(OutboundFile(url=URL, name=name, content_type=content_type)))
    (call,) = tg.calls_to(method)
    assert call.params == {"chat_id": 42, field: URL}


async def test_refused_file_url_becomes_a_link(tg: FakeTelegram, adapter: TelegramAdapter) -> None:
    tg.fail("sendDocument", error_code=400, description="Bad Request: failed to get HTTP URL content")
    await adapter.send(out(OutboundFile(url=URL, name="report.docx", content_type="application/msword")))
    (call,) = tg.calls_to("sendMessage")
    assert call.params == {"chat_id": 42, "text": f"report.docx\n{URL}"}
    assert adapter.stats["file_as_link"] == 1


async def test_files_as_link(tg: FakeTelegram, make_adapter: MakeAdapter) -> None:
    adapter = await make_adapter(files_as="link")
    await adapter.send(out(OutboundFile(url=URL, content_type="image/png")))
    assert [c.method for c in tg.calls if c.method.startswith("send")] == ["sendMessage"]
    assert tg.calls_to("sendMessage")[0].params["text"] == URL


@pytest.mark.parametrize(
    ("error_code", "description"),
    [
        (403, "Forbidden: bot was blocked by the user"),
        (400, "Bad Request: chat not found"),
        (400, "Bad Request: message is too long"),
    ],
)
async def test_refusals_are_permanent(tg: FakeTelegram, adapter: TelegramAdapter, error_code: int,
                                      description: str, caplog: pytest.LogCaptureFixture) -> None:
    tg.fail("sendMessage", chat_id=42, error_code=error_code, description=description)
    with pytest.raises(PermanentSendError, match="(?i)" + description.split(": ", 1)[1]):
        await adapter.send(out(OutboundText("hi")))
    assert adapter.stats["permanent_failures"] == 1
    assert any(getattr(r, "chat", None) == 42 for r in caplog.records), "logged with the chat"


async def test_migrated_group_is_permanent_and_names_the_new_chat(tg: FakeTelegram, adapter: TelegramAdapter) -> None:
    tg.fail("sendMessage", error_code=400, description="Bad Request: group chat was upgraded",
            migrate_to_chat_id=-1009)
    with pytest.raises(PermanentSendError, match="-1009"):
        await adapter.send(out(OutboundText("hi"), chat="-5"))


@pytest.mark.parametrize("error_code", [500, 502, 503])
async def test_server_errors_are_retryable(tg: FakeTelegram, adapter: TelegramAdapter, error_code: int) -> None:
    tg.fail("sendMessage", error_code=error_code)
    with pytest.raises(RetryableSendError) as info:
        await adapter.send(out(OutboundText("hi")))
    assert info.value.retry_after is None


async def test_flood_429_is_retryable_with_telegrams_wait(tg: FakeTelegram, adapter: TelegramAdapter) -> None:
    tg.fail("sendMessage", chat_id=42, error_code=429, retry_after=7)
    with pytest.raises(RetryableSendError) as info:
        await adapter.send(out(OutboundText("hi")))
    assert info.value.retry_after == 7
    assert len(tg.calls_to("sendMessage")) == 1, "not retried in place: the queue waits, for this chat only"
    await adapter.send(out(OutboundText("other chat"), chat="43"))
    assert tg.sent_to(43)[0]["text"] == "other chat"


async def test_per_chat_limit_reschedules_instead_of_waiting_long(tg: FakeTelegram,
                                                                  make_adapter: MakeAdapter) -> None:
    adapter = await make_adapter(rate_limits={"private_per_second": 0.1, "private_burst": 1, "max_wait": 0.0})
    await adapter.send(out(OutboundText("one"), message_id="m-1"))
    with pytest.raises(RetryableSendError) as info:
        await adapter.send(out(OutboundText("two"), message_id="m-2"))
    assert info.value.retry_after is not None and 9 < info.value.retry_after <= 10
    assert len(tg.calls_to("sendMessage")) == 1


async def test_network_error_is_retryable(make_adapter: MakeAdapter) -> None:
    async with run_fake_telegram() as short_lived:
        adapter = await make_adapter(api_base_url=short_lived.url)
    # That server is gone now: the connection is refused.
    with pytest.raises(RetryableSendError, match="NetworkError"):
        await adapter.send(out(OutboundText("hi")))


async def test_bad_native_chat_id_is_permanent(adapter: TelegramAdapter) -> None:
    with pytest.raises(PermanentSendError, match="not a Telegram chat id"):
        await adapter.send(out(OutboundText("hi"), chat="web-visitor-1"))


async def test_blank_text_sends_nothing(tg: FakeTelegram, adapter: TelegramAdapter) -> None:
    await adapter.send(out(OutboundText("  \n ")))
    assert tg.calls_to("sendMessage") == []
