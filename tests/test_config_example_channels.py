"""The commented-out example channels of config.example.yaml, uncommented, against the real adapters' schemas:
an operator who uncomments one gets a valid channel once its variables are set, and a bridge that refuses to
start while a secret is still a placeholder."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from adapters.http import HttpAdapter
from adapters.http.config import HttpConfig
from adapters.telegram import TelegramAdapter
from adapters.telegram.config import TelegramConfig
from adapters.telegram.limits import RateLimits
from adapters.webchat import WebchatAdapter
from adapters.webchat.config import WebchatConfig
from bridge.config import ConfigError, adapter_settings, load_config, webhook_token

REPO = Path(__file__).resolve().parent.parent
ADAPTERS = {"webchat": WebchatAdapter, "http": HttpAdapter}
ENV = {
    "WEBCHAT_PLATFORM_TOKEN": "webchat-platform-token-0123456789",
    "WEBCHAT_CHANNEL_TOKEN": "webchat-channel-token-0123456789",
    "DESK_PLATFORM_TOKEN": "desk-platform-token-0123456789",
    "DESK_CHANNEL_TOKEN": "desk-channel-token-0123456789",
    "DESK_INBOUND_SECRET": "desk-inbound-secret-0123456789",
    "DESK_CALLBACK_SECRET": "desk-callback-secret-0123456789",
}


def uncommented(channel_id: str) -> str:
    """The example's commented-out channel `channel_id`, as an operator uncomments it: `  # ` taken off each
    line of the block (its own comments stay comments), up to the blank line that ends it."""
    lines = (REPO / "config.example.yaml").read_text(encoding="utf-8").splitlines()
    start = lines.index(f"  # - id: {channel_id}")
    block: list[str] = []
    for line in lines[start:]:
        if not line.strip():
            break
        assert line.startswith("  # "), f"not a commented-out line of the {channel_id} example: {line!r}"
        block.append("  " + line.removeprefix("  # "))
    return "channels:\n" + "\n".join(block) + "\n"


def write(tmp_path: Path, channel_id: str) -> Path:
    path = tmp_path / f"{channel_id}.yaml"
    path.write_text(uncommented(channel_id), encoding="utf-8")
    return path


def test_webchat_example_is_a_valid_channel(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "webchat"), ADAPTERS, environ=ENV)
    [channel] = config.channels
    assert channel.id == "webchat"
    assert webhook_token(channel.platform.webhook_url) == ENV["WEBCHAT_PLATFORM_TOKEN"]
    settings = adapter_settings(channel, WebchatAdapter)
    assert settings == WebchatConfig()  # the example shows the defaults; the optional secret stays commented out


def test_http_example_is_a_valid_channel(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "http-desk"), ADAPTERS, environ=ENV)
    [channel] = config.channels
    settings = adapter_settings(channel, HttpAdapter)
    assert isinstance(settings, HttpConfig)
    assert (settings.auth, settings.secret, settings.token) == ("hmac", ENV["DESK_INBOUND_SECRET"], None)
    assert settings.signing_secret == ENV["DESK_CALLBACK_SECRET"]
    assert settings.callback_url == "https://desk.example.com/bridge/callback"
    defaults = HttpConfig(auth="hmac", secret="x" * 16, callback_url="https://example.com")
    assert (settings.max_skew, settings.timeout, settings.max_body_bytes, settings.max_text_length,
            settings.file_ttl) == (defaults.max_skew, defaults.timeout, defaults.max_body_bytes, None,
                                   defaults.file_ttl)


@pytest.mark.parametrize(
    ("channel_id", "placeholders"),
    [
        ("webchat", ["channels[0].platform.token", "channels[0].platform.webhook_url"]),
        ("http-desk", ["channels[0].platform.token", "channels[0].adapter.secret",
                       "channels[0].adapter.callback_secret", "channels[0].platform.webhook_url"]),
    ],
)
def test_example_refuses_its_placeholder_secrets(tmp_path: Path, channel_id: str, placeholders: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, channel_id), ADAPTERS, environ={})
    assert sorted(problem.split(":", 1)[0] for problem in caught.value.problems) == sorted(placeholders)
    assert all("placeholder" in problem for problem in caught.value.problems), caught.value.problems


@pytest.mark.parametrize(("channel_id", "struct"), [("webchat", WebchatConfig), ("http-desk", HttpConfig)])
def test_example_documents_every_adapter_key(channel_id: str, struct: type[msgspec.Struct]) -> None:
    """Each key of the adapter's block appears in its example (set or commented out), so operators find it."""
    block = uncommented(channel_id)
    for key in struct.__struct_fields__:
        assert re.search(rf"^ +(# )?{key}:", block, re.MULTILINE), f"{struct.__name__}.{key} is missing"


def telegram_block_with_tuning_uncommented() -> str:
    """The example's Telegram channel with its commented-out tuning keys (from `edit_marker:` on) uncommented,
    as an operator who wants to change one of them would."""
    lines = (REPO / "config.example.yaml").read_text(encoding="utf-8").splitlines()
    start = lines.index("channels:")
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].strip())
    block = lines[start:end]
    first = next((i for i, line in enumerate(block) if line.strip().startswith("# edit_marker:")), None)
    assert first is not None, "the Telegram channel's tuning keys (from edit_marker:) are not in the example"
    keys = "|".join([*TelegramConfig.__struct_fields__, *RateLimits.__struct_fields__])
    setting = re.compile(rf"^( +)# ((  )?({keys}):.*)$")
    for i in range(first, len(block)):
        found = setting.match(block[i])
        if found:
            block[i] = found.group(1) + found.group(2)
    return "\n".join(block) + "\n"


def test_example_documents_every_telegram_key_with_its_default(tmp_path: Path) -> None:
    """Each key of the Telegram adapter's block (its rate limits included) is in the example, and uncommenting
    the tuning keys gives a valid channel with exactly the defaults the example claims."""
    text = telegram_block_with_tuning_uncommented()
    for struct in (TelegramConfig, RateLimits):
        for key in struct.__struct_fields__:
            assert re.search(rf"^ +(# )?{key}:", text, re.MULTILINE), f"{struct.__name__}.{key} is missing"
    path = tmp_path / "telegram.yaml"
    path.write_text(text, encoding="utf-8")
    env = {"PLATFORM_TOKEN": "telegram-platform-token-0123456789", "CHANNEL_TOKEN": "telegram-channel-token-012345",
           "TELEGRAM_BOT_TOKEN": "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"}
    [channel] = load_config(path, {"telegram": TelegramAdapter}, environ=env).channels
    settings = adapter_settings(channel, TelegramAdapter)
    assert settings == TelegramConfig(bot_token=env["TELEGRAM_BOT_TOKEN"])
