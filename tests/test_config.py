"""Config loading: strict schema, `${VAR}` interpolation, semantic checks, placeholder secrets, reply URLs."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any, Literal

import msgspec
import pytest

from bridge.adapter import Adapter
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
from bridge.messages import Outbound

REPO = Path(__file__).resolve().parent.parent
PLATFORM_TOKEN = "ac650a3c369a4b9599ad52ab71943712"
WEBHOOK = f"https://app.chatbots.example.com/connector/omnichannel/omnichannel_message/{PLATFORM_TOKEN}/bot_api_webhook"
CHANNEL_TOKEN = "channel-token-0123456789abcd"
URL_SECRET = "url-secret-0123456789wxyz"


class TelegramSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    bot_token: str
    mode: Literal["webhook", "polling"] = "webhook"
    webhook_secret: str | None = None
    groups: Literal["ignore", "chat"] = "ignore"
    edits: Literal["forward", "ignore"] = "forward"
    files_as: Literal["native", "link"] = "native"
    api_base_url: str = "https://api.telegram.org"
    poll_timeout: int = 30


class TelegramLike(Adapter[TelegramSettings]):
    name = "telegram"
    config_type = TelegramSettings

    async def do_send(self, message: Outbound) -> None:
        raise NotImplementedError


class WebchatSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    title: str = "Chat"


class WebchatLike(Adapter[WebchatSettings]):
    name = "webchat"
    config_type = WebchatSettings

    async def do_send(self, message: Outbound) -> None:
        raise NotImplementedError


REGISTRY: dict[str, type[Any]] = {"telegram": TelegramLike, "webchat": WebchatLike}


def yaml_text(body: str) -> str:
    return textwrap.dedent(body).lstrip("\n")


def channel_yaml(
    *,
    id: str = "tg",
    platform: str = f"token: {CHANNEL_TOKEN}",
    adapter: str = "type: telegram\n        bot_token: '123:abc'",
) -> str:
    return f"""
  - id: {id}
    platform:
        webhook_url: {WEBHOOK}
        {platform}
    adapter:
        {adapter}
"""


def config_yaml(*channels: str, extra: str = "") -> str:
    return "channels:" + "".join(channels or (channel_yaml(),)) + yaml_text(extra)


def problems_of(text: str, adapters: dict[str, type[Any]] | None = None, **environ: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, adapters, source="test.yaml", environ=environ)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


# ------------------------------------------------------------------------------------------------- valid


def test_minimal_config_gets_defaults() -> None:
    config = parse_config(config_yaml(), REGISTRY, environ={})
    assert [c.id for c in config.channels] == ["tg"]
    channel = config.channels[0]
    assert channel.platform.token == CHANNEL_TOKEN
    assert channel.platform.url_secret is None
    assert channel.adapter_type == "telegram"
    assert config.server.port == 8080
    assert config.store.url.startswith("sqlite:///")
    assert config.delivery.retry_schedule[0] == 0
    assert config.logging.format == "json"


def test_full_config_and_normalization() -> None:
    text = config_yaml(
        channel_yaml(platform=f"url_secret: {URL_SECRET}\n        token: ''\n        site: shop"),
        extra="""
        server: {host: 127.0.0.1, port: 9000, public_url: "https://bridge.example.com/base/"}
        store: {url: "redis://:pw-0123456789@127.0.0.1:6379/15"}
        delivery: {retry_schedule: [1, 2.5], max_age: 60, jitter: 0, workers: 2, shutdown_grace: 0}
        files: {signing_key: signing-key-0123456789, url_ttl: 30, max_size_mb: 1.5}
        logging: {level: debug, format: console}
        metrics: {token: metrics-token-0123456789}
        """,
    )
    config = parse_config(text, REGISTRY, environ={})
    assert config.server.public_url == "https://bridge.example.com/base"
    assert config.channels[0].platform.token is None  # empty means unset
    assert config.channels[0].platform.site == "shop"
    assert config.delivery.retry_schedule == [1.0, 2.5]
    assert config.logging.level == "DEBUG"
    assert config.store.url.startswith("redis://")


def test_empty_section_means_defaults() -> None:
    config = parse_config(config_yaml(extra="server:\nlogging:\n"), environ={})
    assert config.server.port == 8080


def test_load_config_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(config_yaml(), encoding="utf-8")
    assert load_config(path, REGISTRY, environ={}).channels[0].id == "tg"


# ------------------------------------------------------------------------------------------ YAML and files


def test_broken_yaml_is_one_line_with_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("channels:\n  - id: tg\n    platform: [unclosed\n  server: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [problem] = caught.value.problems
    assert problem.startswith(f"{path}:4:")
    assert "invalid YAML" in problem


def test_duplicate_yaml_key_is_reported_with_its_line() -> None:
    text = config_yaml(extra="server:\n  port: 1\n  port: 2\n")
    [problem] = problems_of(text)
    line = text.splitlines().index("  port: 2") + 1
    assert problem == f"test.yaml:{line}:3: duplicate key 'port'"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "test.yaml: the file is empty"),
        ("- 1\n- 2\n", "test.yaml: expected a mapping of keys (channels:, server:, ...), got list"),
    ],
)
def test_file_that_is_not_a_mapping(content: str, expected: str) -> None:
    [problem] = problems_of(content)
    assert problem.startswith(expected)


def test_missing_unreadable_and_binary_files_are_one_line(tmp_path: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"channels: \xff\xfe\n")
    for path, expected in [
        (tmp_path / "absent.yaml", "file not found"),
        (tmp_path, "is a directory, not a config file"),
        (binary, "not UTF-8 text (invalid start byte at byte 10)"),
    ]:
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        assert caught.value.problems == [f"{path}: {expected}"]


# ---------------------------------------------------------------------------------------------- the schema


def test_unknown_keys_everywhere_are_all_reported() -> None:
    text = config_yaml(
        channel_yaml(platform=f"token: {CHANNEL_TOKEN}\n        tokne: x"),
        extra="server: {prot: 1}\nbogus: 1\n",
    )
    assert problems_of(text) == [
        "bogus: unknown key",
        "server.prot: unknown key",
        "channels[0].platform.tokne: unknown key",
    ]


def test_yaml_aliases_are_checked_at_every_use() -> None:
    text = yaml_text(f"""
        channels:
          - id: a
            platform: &shared {{webhook_url: "{WEBHOOK}", token: {CHANNEL_TOKEN}, colour: red}}
            adapter: {{type: telegram}}
          - id: b
            platform: *shared
            adapter: {{type: telegram}}
        """)
    assert problems_of(text) == ["channels[0].platform.colour: unknown key", "channels[1].platform.colour: unknown key"]


def test_wrong_types_name_the_key_and_both_types() -> None:
    text = config_yaml(
        channel_yaml(platform=f"token: {CHANNEL_TOKEN}\n        timeout: soon"),
        extra="server: {port: '8080', host: [a]}\ndelivery: {workers: true}\n",
    )
    assert problems_of(text) == [
        "server.port: expected int, got str",
        "server.host: expected str, got list",
        "delivery.workers: expected int, got bool",
        "channels[0].platform.timeout: expected float, got str",
    ]


def test_missing_required_keys() -> None:
    text = "channels:\n  - id: tg\n    adapter: {type: telegram}\n    platform: {token: abcdefghijkl}\n"
    assert problems_of(text) == ["channels[0].platform.webhook_url: required key is missing"]
    assert problems_of("server: {port: 1}\n") == ["channels: required key is missing"]
    assert problems_of("channels: []\n") == ["channels: at least one channel is required"]
    assert problems_of("channels: {a: 1}\n") == ["channels: expected list, got mapping"]


def test_a_broken_channel_does_not_hide_the_next_ones() -> None:
    text = config_yaml(channel_yaml(platform="timeout: 1"), "  - 5\n", channel_yaml(id="Bad_Id"))
    problems = problems_of(text)
    assert problems[0] == "channels[1]: expected mapping, got int"  # schema problems come first
    assert problems[1].startswith("channels[0].platform: needs token")
    assert problems[2].startswith("channels[2].id: must use only lowercase letters, digits and '-'")
    assert len(problems) == 3


# ----------------------------------------------------------------------------------------- interpolation


def test_missing_env_var_names_key_and_variable_without_follow_up_noise() -> None:
    text = config_yaml(channel_yaml(platform="token: ${CHANNEL_TOKEN}"), extra="server: {port: '${PORT}'}\n")
    assert problems_of(text) == [
        "channels[0].platform.token: environment variable CHANNEL_TOKEN is not set",
        "server.port: environment variable PORT is not set",
    ]


def test_env_var_and_default() -> None:
    text = config_yaml(channel_yaml(platform="token: ${CHANNEL_TOKEN:-default-token-0000}"))
    assert parse_config(text, environ={}).channels[0].platform.token == "default-token-0000"
    assert parse_config(text, environ={"CHANNEL_TOKEN": ""}).channels[0].platform.token == "default-token-0000"
    env_token = parse_config(text, environ={"CHANNEL_TOKEN": "from-env-1234"}).channels[0].platform.token
    assert env_token == "from-env-1234"
    both = config_yaml(channel_yaml(platform="token: ${A}-${B:-b}"))
    assert parse_config(both, environ={"A": "a"}).channels[0].platform.token == "a-b"


def test_dollar_dollar_escapes_a_literal_reference() -> None:
    text = config_yaml(channel_yaml(platform="token: $${NOT_A_VAR}and$${X:-y}"))
    assert parse_config(text, environ={}).channels[0].platform.token == "${NOT_A_VAR}and${X:-y}"


def test_env_values_become_numbers_where_numbers_are_expected() -> None:
    text = config_yaml(
        extra="server: {port: '${PORT:-8080}'}\ndelivery: {retry_schedule: ['${FIRST}', 5], jitter: '${J}'}\n"
    )
    config = parse_config(text, environ={"PORT": "9090", "FIRST": "1.5", "J": "0"})
    assert config.server.port == 9090
    assert config.delivery.retry_schedule == [1.5, 5.0]
    assert problems_of(text, PORT="http", FIRST="1", J="0") == ["server.port: expected int, got str"]


def test_env_values_in_adapter_keys_are_kept_as_checked() -> None:
    channel = channel_yaml(adapter="type: telegram\n        bot_token: '${TOKEN}'\n        poll_timeout: ${T}")
    config = parse_config(config_yaml(channel), REGISTRY, environ={"TOKEN": "12345", "T": "7"})
    settings = adapter_settings(config.channels[0], TelegramLike)
    assert isinstance(settings, TelegramSettings)
    assert settings.bot_token == "12345"  # a numeric secret stays a string where a string is expected
    assert settings.poll_timeout == 7


def test_bad_references_are_reported() -> None:
    text = config_yaml(channel_yaml(platform="token: ${1BAD} ${OPEN"))
    problems = problems_of(text)
    assert problems[0].startswith("channels[0].platform.token: invalid reference ${1BAD}")
    assert problems[1].startswith("channels[0].platform.token: unterminated ${")


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


# ---------------------------------------------------------------------------------------------- adapters


def test_adapter_type_missing_or_unknown() -> None:
    text = config_yaml(channel_yaml(id="a", adapter="bot_token: x"), channel_yaml(id="b", adapter="type: sms"))
    assert problems_of(text, REGISTRY) == [
        "channels[0].adapter.type: required key is missing (the adapter to use, e.g. telegram)",
        "channels[1].adapter.type: unknown adapter type 'sms' (installed: telegram, webchat)",
    ]
    [problem] = problems_of(config_yaml(channel_yaml(adapter="type: sms")), {})
    assert problem == "channels[0].adapter.type: unknown adapter type 'sms' (installed: none)"
    # Without a registry the type cannot be checked, only required.
    assert parse_config(config_yaml(channel_yaml(adapter="type: sms")), environ={}).channels[0].adapter_type == "sms"


def test_adapter_keys_are_decoded_strictly_by_the_adapter_struct() -> None:
    adapter = "type: telegram\n        bot_token: 5\n        mode: push\n        colour: red"
    assert problems_of(config_yaml(channel_yaml(adapter=adapter)), REGISTRY) == [
        "channels[0].adapter.bot_token: expected str, got int",
        "channels[0].adapter.mode: invalid enum value 'push' (expected one of 'polling', 'webhook')",
        "channels[0].adapter.colour: unknown key",
    ]


def test_adapter_settings() -> None:
    config = parse_config(config_yaml(), REGISTRY, environ={})
    settings = adapter_settings(config.channels[0], TelegramLike)
    assert settings == TelegramSettings(bot_token="123:abc")
    unchecked = parse_config(config_yaml(channel_yaml(adapter="type: telegram\n        x: 1")), environ={})
    with pytest.raises(ConfigError) as caught:
        adapter_settings(unchecked.channels[0], TelegramLike, index=0)
    assert caught.value.problems == [
        "channels[0].adapter.x: unknown key",
        "channels[0].adapter.bot_token: required key is missing",
    ]
    with pytest.raises(ConfigError) as caught:
        adapter_settings(unchecked.channels[0], TelegramLike)
    assert caught.value.problems[0] == "channels[id=tg].adapter.x: unknown key"


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
