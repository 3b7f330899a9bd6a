"""Config checks beyond the schema: ids, URLs, ranges, placeholder secrets, reply URLs, the example file."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest

from bridge.config import (
    ChannelConfig,
    Config,
    ConfigError,
    DeliveryConfig,
    FilesConfig,
    LoggingConfig,
    MetricsConfig,
    PlatformConfig,
    ServerConfig,
    StoreConfig,
    adapter_settings,
    load_config,
    mask_secret,
    masked_webhook_url,
    parse_config,
    reply_urls,
    secret_values,
    webhook_token,
)
from tests.config_support import (
    CHANNEL_TOKEN,
    PLATFORM_TOKEN,
    REGISTRY,
    REPO,
    URL_SECRET,
    WEBHOOK,
    TelegramLike,
    TelegramSettings,
    channel_yaml,
    config_yaml,
    problems_of,
)

# ------------------------------------------------------------------------------------------ semantic checks


def test_duplicate_and_bad_channel_ids() -> None:
    text = config_yaml(channel_yaml(id="a"), channel_yaml(id="a"), channel_yaml(id="Shop.1"))
    assert problems_of(text) == [
        "channels[1].id: duplicate channel id 'a' (also used by channels[0])",
        "channels[2].id: must use only lowercase letters, digits and '-' ([a-z0-9-]+), got 'Shop.1'",
    ]


def test_channel_needs_token_or_url_secret() -> None:
    for platform in ("site: x", "token: ''\n        url_secret: ''", "token: '${UNSET:-}'"):
        [problem] = problems_of(config_yaml(channel_yaml(platform=platform)))
        assert problem.startswith("channels[0].platform: needs token")


def test_url_secret_must_be_url_safe_and_long() -> None:
    assert problems_of(config_yaml(channel_yaml(platform="url_secret: short"))) == [
        "channels[0].platform.url_secret: is too short to be secret: use at least 16 random characters"
    ]
    [problem] = problems_of(config_yaml(channel_yaml(platform="url_secret: 'has/slash-0123456789'")))
    assert problem.startswith("channels[0].platform.url_secret: may only use letters")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://db/bridge", "store.url: unsupported scheme 'mysql': use one of sqlite, redis, rediss"),
        ("bridge.db", "store.url: unsupported no scheme"),
        ("sqlite://", "store.url: a sqlite URL needs a file path"),
        ("redis://127.0.0.1:6379/zero", "store.url: the redis database number must be an integer"),
        ("redis://127.0.0.1:port/0", "store.url: is not a valid URL"),
    ],
)
def test_bad_store_url(url: str, expected: str) -> None:
    [problem] = problems_of(config_yaml(extra=f"store: {{url: '{url}'}}\n"))
    assert problem.startswith(expected)


@pytest.mark.parametrize("url", ["sqlite:///./data/b.db", "sqlite:////var/lib/b.db", "rediss://h:6380/2", "redis://h"])
def test_good_store_urls(url: str) -> None:
    assert parse_config(config_yaml(extra=f"store: {{url: '{url}'}}\n"), environ={}).store.url == url


def test_urls_must_be_http() -> None:
    channel = channel_yaml().replace(WEBHOOK, "ftp://x/omnichannel_message/tok/bot_api_webhook")
    text = config_yaml(channel, extra="server: {public_url: 'https://b.example.com/?x=1'}\n")
    assert problems_of(text) == [
        "server.public_url: must not have a query (?...) or fragment (#...): the bridge appends paths to it",
        "channels[0].platform.webhook_url: must be an http:// or https:// URL (got scheme 'ftp')",
    ]
    [problem] = problems_of(config_yaml(extra="server: {public_url: 'bridge.example.com'}\n"))
    assert problem == "server.public_url: must be an http:// or https:// URL (no scheme)"


def test_ranges_and_enumerations() -> None:
    text = config_yaml(
        channel_yaml(platform=f"token: {CHANNEL_TOKEN}\n        timeout: 0\n        connect_timeout: -1"),
        extra="""
        server: {port: 70000, max_body_bytes: 0}
        delivery: {retry_schedule: [1, -5], max_age: .inf, jitter: 2, workers: 0, dedupe_ttl: 0}
        files: {url_ttl: 0, max_size_mb: -1}
        logging: {level: loud, format: xml}
        """,
    )
    assert problems_of(text) == [
        "server.port: must be between 1 and 65535, got 70000",
        "server.max_body_bytes: must be a positive number, got 0",
        "delivery.retry_schedule[1]: must be a number >= 0, got -5.0",
        "delivery.max_age: must be a positive number, got inf",
        "delivery.jitter: must be between 0 and 1, got 2.0",
        "delivery.workers: must be at least 1, got 0",
        "delivery.dedupe_ttl: must be a positive number, got 0.0",
        "files.url_ttl: must be a positive number, got 0.0",
        "files.max_size_mb: must be a positive number, got -1.0",
        "logging.level: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'loud'",
        "logging.format: must be one of json, console, got 'xml'",
        "channels[0].platform.timeout: must be a positive number, got 0.0",
        "channels[0].platform.connect_timeout: must be a positive number, got -1.0",
    ]
    [problem] = problems_of(config_yaml(extra="delivery: {retry_schedule: []}\n"))
    assert problem == "delivery.retry_schedule: must list at least one delay (seconds)"


# ------------------------------------------------------------------------------------------------ secrets


def test_placeholder_secrets_are_refused_by_key() -> None:
    channel = channel_yaml(
        platform="token: CHANGE-ME-token\n        url_secret: change-me-url-secret-123",
        adapter="type: webchat\n        api_key: Change-Me-1\n        nested: {webhook_secret: CHANGE-ME}\n"
        "        title: CHANGE-ME is not a secret key",
    ).replace(PLATFORM_TOKEN, "CHANGE-ME-platform-token")
    text = config_yaml(channel, extra="files: {signing_key: CHANGE-ME-x}\nmetrics: {token: CHANGE-ME-y}\n")
    assert problems_of(text) == [
        "channels[0].platform.token: is still the placeholder 'CHANGE-ME-token': set the real secret",
        "channels[0].platform.url_secret: is still the placeholder 'change-me-url-secret-123': set the real secret",
        "channels[0].adapter.api_key: is still the placeholder 'Change-Me-1': set the real secret",
        "channels[0].adapter.nested.webhook_secret: is still the placeholder 'CHANGE-ME': set the real secret",
        "files.signing_key: is still the placeholder 'CHANGE-ME-x': set the real secret",
        "metrics.token: is still the placeholder 'CHANGE-ME-y': set the real secret",
        "channels[0].platform.webhook_url: holds the placeholder token 'CHANGE-ME-platform-token': "
        "paste the channel's App.Chatbots webhook URL",
    ]


def test_every_problem_is_listed_interpolation_first() -> None:
    text = config_yaml(
        channel_yaml(id="Bad", platform="token: ${NOPE}\n        extra: 1"),
        channel_yaml(platform="token: CHANGE-ME"),
        extra="store: {url: 'ftp://x'}\nlogging: {level: '${LEVEL}'}\n",
    )
    problems = problems_of(text, REGISTRY)
    assert problems[:2] == [
        "channels[0].platform.token: environment variable NOPE is not set",
        "logging.level: environment variable LEVEL is not set",
    ]
    assert "channels[0].platform.extra: unknown key" in problems
    assert any(p.startswith("store.url: unsupported scheme 'ftp'") for p in problems)
    assert any(p.startswith("channels[0].id: must use only") for p in problems)
    assert "channels[1].platform.token: is still the placeholder 'CHANGE-ME': set the real secret" in problems
    assert len(problems) == 6


def test_secret_values_lists_every_secret() -> None:
    channel = channel_yaml(
        platform=f"token: {CHANNEL_TOKEN}\n        url_secret: {URL_SECRET}",
        adapter="type: telegram\n        bot_token: '123:abc'\n        webhook_secret: hook-secret-99",
    )
    text = config_yaml(
        channel,
        extra="store: {url: 'redis://:redis-pw@127.0.0.1/0'}\nfiles: {signing_key: sk-1}\nmetrics: {token: mt-1}\n",
    )
    config = parse_config(text, REGISTRY, environ={})
    assert secret_values(config) == {
        CHANNEL_TOKEN,
        URL_SECRET,
        PLATFORM_TOKEN,
        "123:abc",
        "hook-secret-99",
        "redis-pw",
        "sk-1",
        "mt-1",
    }


def test_masking() -> None:
    assert mask_secret("0123456789abcdef") == "****cdef"
    assert mask_secret("short-secr") == "****"  # too short to show any of it
    assert webhook_token(WEBHOOK) == PLATFORM_TOKEN
    assert masked_webhook_url(WEBHOOK) == WEBHOOK.replace(PLATFORM_TOKEN, "****3712")
    assert webhook_token("https://x.example.com/hook") is None


# --------------------------------------------------------------------------------------------- reply URLs


def _config(platform: str, extra: str = "") -> Config:
    return parse_config(config_yaml(channel_yaml(platform=platform), extra=extra), environ={})


def test_reply_urls_in_header_and_secret_modes() -> None:
    public = "server: {public_url: 'https://bridge.example.com/'}\n"
    config = _config(f"token: {CHANNEL_TOKEN}", public)
    assert reply_urls(config, config.channels[0]) == [
        ("https://bridge.example.com/channels/tg", "header: Authorization: Token ****abcd")
    ]
    config = _config(f"url_secret: {URL_SECRET}", public)
    [(url, mode)] = reply_urls(config, config.channels[0])
    assert url == "https://bridge.example.com/channels/tg/****wxyz"
    assert mode.startswith("secret URL")
    [(url, _)] = reply_urls(config, config.channels[0], reveal=True)
    assert url == f"https://bridge.example.com/channels/tg/{URL_SECRET}"


def test_reply_urls_without_public_url_use_host_and_port() -> None:
    config = _config(f"token: {CHANNEL_TOKEN}\n        url_secret: {URL_SECRET}", "server: {host: '::1', port: 81}")
    assert [url for url, _ in reply_urls(config, config.channels[0])] == [
        "http://[::1]:81/channels/tg",
        "http://[::1]:81/channels/tg/****wxyz",
    ]


# --------------------------------------------------------------------------------------- config.example.yaml

EXAMPLE_ENV = {
    "PLATFORM_TOKEN": PLATFORM_TOKEN,
    "CHANNEL_TOKEN": CHANNEL_TOKEN,
    "TELEGRAM_BOT_TOKEN": "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
}


def test_example_is_refused_while_it_holds_placeholders() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(REPO / "config.example.yaml", REGISTRY, environ={})
    assert caught.value.problems == [
        "channels[0].platform.token: is still the placeholder 'CHANGE-ME-channel-token': set the real secret",
        "channels[0].adapter.bot_token: is still the placeholder 'CHANGE-ME-telegram-bot-token': set the real secret",
        "channels[0].platform.webhook_url: holds the placeholder token 'CHANGE-ME-platform-token': "
        "paste the channel's App.Chatbots webhook URL",
    ]


@pytest.mark.parametrize("registry", [REGISTRY, None], ids=["with-adapters", "without-adapters"])
def test_example_is_accepted_once_the_env_vars_are_set(registry: dict[str, type[Any]] | None) -> None:
    config = load_config(REPO / "config.example.yaml", registry, environ=EXAMPLE_ENV)
    [channel] = config.channels
    assert channel.platform.token == CHANNEL_TOKEN
    assert webhook_token(channel.platform.webhook_url) == PLATFORM_TOKEN
    assert config.server.public_url is None
    if registry:
        settings = adapter_settings(channel, TelegramLike)
        assert isinstance(settings, TelegramSettings)
        assert settings.groups == "ignore"


def test_example_documents_every_key() -> None:
    """Every schema key appears in the example (set or commented out), so that operators find it there."""
    text = (REPO / "config.example.yaml").read_text(encoding="utf-8")
    structs: list[type[msgspec.Struct]] = [Config, ChannelConfig, PlatformConfig, ServerConfig, StoreConfig]
    structs += [DeliveryConfig, FilesConfig, LoggingConfig, MetricsConfig]
    for struct in structs:
        for key in struct.__struct_fields__:
            assert re.search(rf"^[ #]*(- )?{key}:", text, re.MULTILINE), f"{struct.__name__}.{key} is missing"
