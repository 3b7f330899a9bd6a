"""Config loading: YAML, the strict schema, `${VAR}` interpolation, adapter blocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import ConfigError, adapter_settings, load_config, parse_config
from tests.config_support import (
    CHANNEL_TOKEN,
    REGISTRY,
    URL_SECRET,
    WEBHOOK,
    TelegramLike,
    TelegramSettings,
    channel_yaml,
    config_yaml,
    problems_of,
    yaml_text,
)

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
