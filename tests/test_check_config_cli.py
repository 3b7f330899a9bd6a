"""`omnichannel-bridge check-config`, run as operators run it: the real console entry in a subprocess.

A throwaway distribution on PYTHONPATH registers a test adapter through the real entry-point group, so the
command validates adapter keys exactly as it does for installed plugins.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PLATFORM_TOKEN = "ac650a3c369a4b9599ad52ab71943712"
WEBHOOK = f"https://app.chatbots.example.com/connector/omnichannel/omnichannel_message/{PLATFORM_TOKEN}/bot_api_webhook"
CHANNEL_TOKEN = "channel-token-0123456789abcd"
URL_SECRET = "url-secret-0123456789wxyz"
TELEGRAM_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
EXAMPLE_VARS = (
    "PORT",
    "BRIDGE_PUBLIC_URL",
    "BRIDGE_STORE_URL",
    "PLATFORM_TOKEN",
    "CHANNEL_TOKEN",
    "CHANNEL_URL_SECRET",
    "TELEGRAM_BOT_TOKEN",
    "FILES_SIGNING_KEY",
    "LOG_LEVEL",
    "METRICS_TOKEN",
)

TEST_ADAPTER = '''
import msgspec

from bridge.adapter import Adapter


class EchoSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    greeting: str = "hi"
    api_key: str | None = None


class EchoAdapter(Adapter[EchoSettings]):
    name = "cli-test-echo"
    config_type = EchoSettings

    async def do_send(self, message):
        raise NotImplementedError
'''


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The process environment: no example variables, a test adapter registered as an entry point."""
    site = tmp_path / "site"
    dist_info = site / "cli_test_adapter-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (site / "cli_test_adapter.py").write_text(TEST_ADAPTER, encoding="utf-8")
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: cli-test-adapter\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(
        "[omnichannel_bridge.adapters]\ncli-test-echo = cli_test_adapter:EchoAdapter\n"
    )
    environ = {key: value for key, value in os.environ.items() if key not in EXAMPLE_VARS}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), environ.get("PYTHONPATH")]))
    return environ


def check_config(env: dict[str, str], *args: str | Path, cwd: Path) -> Run:
    done = subprocess.run(
        [sys.executable, "-m", "bridge", "check-config", *map(str, args)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in done.stderr
    return Run(done.returncode, done.stdout, done.stderr)


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "bridge.yaml"
    path.write_text(textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    return path


VALID = f"""
    server:
      public_url: https://bridge.example.com/
    channels:
      - id: shop
        platform:
          webhook_url: {WEBHOOK}
          token: ${{SHOP_TOKEN:-{CHANNEL_TOKEN}}}
          url_secret: {URL_SECRET}
        adapter:
          type: cli-test-echo
          greeting: hello
"""


def test_valid_config_prints_both_urls_with_secrets_masked(env: dict[str, str], tmp_path: Path) -> None:
    path = write_config(tmp_path, VALID)
    run = check_config(env, path, cwd=tmp_path)
    assert (run.code, run.err) == (0, "")
    lines = [line.strip() for line in run.out.splitlines()]
    assert lines[0] == f"{path}: OK (1 channel)"
    assert "channel shop (adapter: cli-test-echo)" in lines
    assert WEBHOOK.replace(PLATFORM_TOKEN, "****3712") in lines
    assert "https://bridge.example.com/channels/shop" in lines
    assert 'header: Authorization: Token ****abcd (put the token in "Channel webhook: Token")' in lines
    assert "https://bridge.example.com/channels/shop/****wxyz" in lines
    for secret in (PLATFORM_TOKEN, CHANNEL_TOKEN, URL_SECRET):
        assert secret not in run.out


def test_a_webhook_url_of_another_form_gets_a_note(env: dict[str, str], tmp_path: Path) -> None:
    run = check_config(env, write_config(tmp_path, VALID), cwd=tmp_path)
    assert "not of the documented form" not in run.out
    path = write_config(tmp_path, VALID.replace(WEBHOOK, "https://app.chatbots.example.com/hooks/omnichannel"))
    run = check_config(env, path, cwd=tmp_path)
    assert run.code == 0
    assert "note: this is not of the documented form" in run.out
    assert "the platform answers 404 to other paths" in run.out


def test_dash_c_and_show_secrets(env: dict[str, str], tmp_path: Path) -> None:
    path = write_config(tmp_path, VALID)
    run = check_config(env, "-c", path, "--show-secrets", cwd=tmp_path)
    assert run.code == 0
    assert WEBHOOK in run.out
    assert f"Authorization: Token {CHANNEL_TOKEN}" in run.out
    assert f"https://bridge.example.com/channels/shop/{URL_SECRET}" in run.out


def test_without_public_url_the_urls_use_host_and_port(env: dict[str, str], tmp_path: Path) -> None:
    path = write_config(tmp_path, VALID.replace("public_url: https://bridge.example.com/", "port: 8181"))
    run = check_config(env, path, cwd=tmp_path)
    assert run.code == 0
    assert "note: server.public_url is not set, so the reply URLs below use http://127.0.0.1:8181" in run.out
    assert "http://127.0.0.1:8181/channels/shop\n" in run.out


def test_invalid_config_exits_2_with_one_line_per_problem(env: dict[str, str], tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        f"""
        store: {{url: "mysql://db/bridge"}}
        channels:
          - id: Shop
            platform:
              webhook_url: {WEBHOOK}
              token: ${{MISSING_TOKEN}}
              timout: 3
            adapter: {{type: cli-test-echo, greeting: 5, api_key: CHANGE-ME-key}}
          - id: other
            platform: {{webhook_url: "{WEBHOOK}"}}
            adapter: {{type: cli-test-echo}}
        """,
    )
    run = check_config(env, path, cwd=tmp_path)
    assert (run.code, run.out) == (2, "")
    assert run.err.splitlines() == [
        "channels[0].platform.token: environment variable MISSING_TOKEN is not set",
        "channels[0].platform.timout: unknown key",
        "store.url: unsupported scheme 'mysql': use one of sqlite, redis, rediss "
        "(sqlite:///./data/bridge.db, redis://host:6379/0 or rediss://host:6380/0)",
        "channels[0].id: must use only lowercase letters, digits and '-' ([a-z0-9-]+), got 'Shop'",
        "channels[0].adapter.greeting: expected str, got int",
        "channels[1].platform: needs token (the platform sends it as 'Authorization: Token ...') or url_secret "
        "(a secret reply URL), or both",
        "channels[0].adapter.api_key: is still the placeholder 'CHANGE-ME-key': set the real secret",
    ]


def test_unknown_adapter_type_lists_the_installed_ones(env: dict[str, str], tmp_path: Path) -> None:
    pytest.importorskip("bridge.plugins")
    path = write_config(tmp_path, VALID.replace("type: cli-test-echo", "type: fax"))
    run = check_config(env, path, cwd=tmp_path)
    assert run.code == 2
    [line] = run.err.splitlines()
    assert line.startswith("channels[0].adapter.type: unknown adapter type 'fax' (installed: ")
    assert "cli-test-echo" in line


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("channels:\n  - id: a\n    platform: {webhook_url: x\n", "{path}:4:1: invalid YAML: "),
        (None, "{path}: file not found"),
    ],
    ids=["broken-yaml", "missing-file"],
)
def test_unreadable_files_are_one_line(
    env: dict[str, str], tmp_path: Path, content: str | None, expected: str
) -> None:
    path = tmp_path / "bridge.yaml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    run = check_config(env, path, cwd=tmp_path)
    assert run.code == 2
    [line] = run.err.splitlines()
    assert line.startswith(expected.format(path=path))


def test_no_file_given_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    run = check_config(env, cwd=tmp_path)
    assert (run.code, run.err) == (2, "check-config: no config file given: pass FILE or -c FILE\n")


def test_the_example_is_refused_for_its_placeholders(env: dict[str, str], tmp_path: Path) -> None:
    run = check_config(env, REPO / "config.example.yaml", cwd=tmp_path)
    assert run.code == 2
    lines = run.err.splitlines()
    for key in ("channels[0].platform.token", "channels[0].adapter.bot_token"):
        assert any(line.startswith(f"{key}: is still the placeholder 'CHANGE-ME-") for line in lines), lines
    assert any(line.startswith("channels[0].platform.webhook_url: holds the placeholder token") for line in lines)


def test_the_example_passes_with_the_installed_telegram_adapter(env: dict[str, str], tmp_path: Path) -> None:
    """Keeps config.example.yaml in step with the real Telegram adapter's keys, once that is installed."""
    plugins = pytest.importorskip("bridge.plugins")
    if "telegram" not in plugins.discover_adapters():
        pytest.skip("the telegram adapter is not installed")
    env = {**env, "PLATFORM_TOKEN": PLATFORM_TOKEN, "CHANNEL_TOKEN": CHANNEL_TOKEN}
    env["TELEGRAM_BOT_TOKEN"] = TELEGRAM_TOKEN
    run = check_config(env, REPO / "config.example.yaml", cwd=tmp_path)
    assert (run.code, run.err) == (0, "")
    assert "channel telegram-main (adapter: telegram)" in run.out
    assert "http://127.0.0.1:8080/channels/telegram-main\n" in run.out
