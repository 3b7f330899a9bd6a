"""`omnichannel-bridge run` when the bridge cannot start: one line naming the reason, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bridge.adapter import AdapterError
from bridge.commands.run import startup_reason
from bridge.store.base import StoreError
from tests.conftest import free_port

BOT_TOKEN = "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
PLATFORM_TOKEN = "platform-token-run-0123456789"
REPLY_TOKEN = "reply-token-run-0123456789"

CONFIG = """
server: {{host: 127.0.0.1, port: {port}}}
store: {{url: "{store}"}}
logging: {{level: INFO, format: console}}
channels:
  - id: tg
    platform:
      webhook_url: http://127.0.0.1:9/connector/omnichannel/omnichannel_message/{platform}/bot_api_webhook
      token: {reply}
    adapter:
      type: telegram
      bot_token: "{bot}"
      # Nothing listens on port 9: getMe fails with a connection error.
      api_base_url: http://127.0.0.1:9
      mode: polling
      connect_timeout: 1
      request_timeout: 1
"""


def run_bridge(tmp_path: Path, store: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.yaml"
    config.write_text(
        CONFIG.format(port=free_port(), store=store, platform=PLATFORM_TOKEN, reply=REPLY_TOKEN, bot=BOT_TOKEN),
        encoding="utf-8",
    )
    return subprocess.run(
        [sys.executable, "-m", "bridge", "run", "-c", str(config)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False,
    )


@pytest.mark.parametrize(
    ("store", "reason"),
    [
        ("sqlite:///{tmp}/bridge.db", "the bridge could not start: NetworkError: "),
        ("sqlite:////proc/no-such-folder/bridge.db", "the bridge could not start: cannot create the folder"),
    ],
    ids=["adapter", "store"],
)
def test_a_failed_start_is_one_clear_line(tmp_path: Path, store: str, reason: str) -> None:
    done = run_bridge(tmp_path, store.format(tmp=tmp_path))
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    [line] = [line for line in done.stderr.splitlines() if "could not start" in line]
    assert reason in line, done.stderr
    for secret in (BOT_TOKEN.partition(":")[2], PLATFORM_TOKEN, REPLY_TOKEN):
        assert secret not in done.stderr


def test_startup_reason_unwraps_groups_and_keeps_the_bridges_own_messages() -> None:
    assert startup_reason(ExceptionGroup("x", [StoreError("the store is gone")])) == "the store is gone"
    assert startup_reason(AdapterError("Telegram refused the bot token")) == "Telegram refused the bot token"
    assert startup_reason(OSError("no\nroute")) == "OSError: no route"
    assert startup_reason(RuntimeError()) == "RuntimeError"
