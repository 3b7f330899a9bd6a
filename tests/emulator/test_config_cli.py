"""Emulator config files and the `omnichannel-bridge emulator` command."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import aiohttp
import pytest

from bridge.cli import build_parser
from bridge.commands.emulator import UsageError, build_config
from bridge.commands.emulator import main as emulator_main
from bridge.emulator import EmulatorChannel, EmulatorConfig, EmulatorConfigError, load_emulator_config
from tests.conftest import free_port
from tests.emulator.helpers import FakeBridge, new_message


def args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["emulator", *argv])


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_config_file_with_a_relative_script(tmp_path: Path) -> None:
    write(tmp_path / "agent.yaml", "- reply: [{kind: operator, text: hi}]\n")
    path = write(
        tmp_path / "emulator.yaml",
        "channels:\n"
        "  - {token: a, reply_url: 'http://127.0.0.1:8080/p/a', reply_token: s}\n"
        "  - {token: b, reply_url: 'http://127.0.0.1:8080/p/b'}\n"
        "script: agent.yaml\nreply_delay: 0.25\n",
    )

    config = load_emulator_config(path)

    assert [(c.token, c.reply_token) for c in config.channels] == [("a", "s"), ("b", None)]
    assert config.reply_delay == 0.25
    assert len(config.script.rules) == 1


def test_config_file_with_inline_rules(tmp_path: Path) -> None:
    path = write(tmp_path / "e.yaml", "script:\n  - match: x\n    reply: []\n")
    assert load_emulator_config(path).script.rules[0].match == "x"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("chanels: []\n", "unknown field `chanels`"),
        ("channels: [{token: a, reply_url: 'ftp://x'}]\n", "`reply_url` must be an http(s) URL"),
        ("channels: [{token: a, reply_url: 'http://x', tokn: b}]\n", "unknown field `tokn` - at `$.channels[0]`"),
        ("reply_delay: -1\n", "Expected `float` >= 0.0 - at `$.reply_delay`"),
        (
            "channels: [{token: a, reply_url: 'http://x'}, {token: a, reply_url: 'http://y'}]\n",
            "channel tokens must be unique; repeated: a",
        ),
        ("script: missing.yaml\n", "missing.yaml: cannot read script"),
        ("script: [{match: x, reply: [{kind: nope}]}]\n", "Invalid value 'nope'"),
        ("channels: [\n", "not valid YAML"),
    ],
)
def test_bad_config_files_are_refused_clearly(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(EmulatorConfigError) as raised:
        load_emulator_config(write(tmp_path / "e.yaml", text))
    assert expected in str(raised.value)


def test_command_line_channels() -> None:
    argv = [
        *("--token", "T", "--reply-url", "http://127.0.0.1:8080/p/t", "--reply-token", "S"),
        *("--channel", "T2", "http://127.0.0.1:8080/p/t2"),
        *("--channel", "T3", "http://127.0.0.1:8080/p/t3", "S3"),
        *("--reply-delay", "0.5"),
    ]
    config = build_config(args(*argv))

    assert config.channels == [
        EmulatorChannel(token="T", reply_url="http://127.0.0.1:8080/p/t", reply_token="S"),
        EmulatorChannel(token="T2", reply_url="http://127.0.0.1:8080/p/t2"),
        EmulatorChannel(token="T3", reply_url="http://127.0.0.1:8080/p/t3", reply_token="S3"),
    ]
    assert config.reply_delay == 0.5


def test_command_line_adds_to_a_config_file_and_replaces_its_script(tmp_path: Path) -> None:
    config_path = write(tmp_path / "e.yaml", "channels: [{token: A, reply_url: 'http://127.0.0.1:1/a'}]\n")
    script_path = write(tmp_path / "s.yaml", "- reply: []\n- reply: []\n")

    config = build_config(
        args("-c", str(config_path), "--channel", "B", "http://127.0.0.1:1/b", "--script", str(script_path))
    )

    assert [c.token for c in config.channels] == ["A", "B"]
    assert len(config.script.rules) == 2


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ((), "no channel"),
        (("--token", "T"), "--token and --reply-url go together"),
        (("--channel", "T"), "--channel takes TOKEN REPLY_URL [REPLY_TOKEN]"),
        (("--channel", "T", "http://x", "s", "extra"), "--channel takes"),
        (("--token", "T", "--reply-url", "localhost:8080"), "channel 'T': `reply_url` must be an http(s) URL"),
        (("--channel", "T", "http://x", "--channel", "T", "http://y"), "repeated: T"),
        (("--token", "T", "--reply-url", "http://x", "--script", "/nonexistent/s.yaml"), "cannot read script"),
        (("--token", "T", "--reply-url", "http://x", "--reply-delay", "-1"), "--reply-delay must be >= 0"),
    ],
)
def test_usage_errors(argv: tuple[str, ...], expected: str) -> None:
    with pytest.raises(UsageError) as raised:
        build_config(args(*argv))
    assert expected in str(raised.value)


def test_main_reports_usage_errors_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert emulator_main(args("--token", "T")) == 2
    err = capsys.readouterr().err
    assert err.startswith("omnichannel-bridge emulator: --token and --reply-url")
    assert "Traceback" not in err


async def test_the_command_serves_the_emulator() -> None:
    port = free_port()
    async with FakeBridge().serve() as bridge:
        argv = [
            *("-m", "bridge", "emulator", "--port", str(port), "--log-level", "warning"),
            *("--token", "cli-token", "--reply-url", bridge.url + "/reply", "--reply-token", "S"),
        ]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *argv,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            webhook = f"http://127.0.0.1:{port}/connector/omnichannel/omnichannel_message/cli-token/bot_api_webhook"
            async with aiohttp.ClientSession() as http:
                status = await _post_when_up(http, webhook, process)
                assert status == 200
                [seen] = await bridge.wait_for(1, timeout=10)
        finally:
            process.terminate()
            _, err = await process.communicate()
    assert seen.path == "/reply/send_message"
    assert seen.authorization == "Token S"
    assert seen.body["message"] == {"kind": "operator", "text": "You said: hello"}
    assert b"channel cli-token: webhook" in err


async def _post_when_up(http: aiohttp.ClientSession, url: str, process: asyncio.subprocess.Process) -> int:
    async with asyncio.timeout(20):
        while True:
            if process.returncode is not None:
                raise AssertionError(f"the emulator exited with {process.returncode}")
            try:
                async with http.post(url, json=new_message()) as response:
                    return response.status
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)


def test_defaults_need_no_file() -> None:
    config = EmulatorConfig()
    assert config.channels == [] and config.reply_delay == 0 and config.script.rules


async def test_the_command_logs_through_the_bridges_redaction() -> None:
    """The webhook token in uvicorn's access line and a secret reply URL in the agent's warning are masked,
    as in the bridge's own logs; the start-up lines that tell the person what to configure still show them."""
    port, dead_port, token = free_port(), free_port(), "emulator-cli-token-0123"
    reply_url = f"http://127.0.0.1:{dead_port}/channels/web/reply-url-secret-0123456789"
    process = await asyncio.create_subprocess_exec(
        sys.executable, *("-m", "bridge", "emulator", "--port", str(port), "--log-level", "info"),
        *("--token", token, "--reply-url", reply_url),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    try:
        webhook = f"http://127.0.0.1:{port}/connector/omnichannel/omnichannel_message/{token}/bot_api_webhook"
        async with aiohttp.ClientSession() as http:
            assert await _post_when_up(http, webhook, process) == 200
        assert process.stderr is not None
        async with asyncio.timeout(10):
            while not any("could not reach" in line for line in lines):
                line = (await process.stderr.readline()).decode()
                assert line, f"the emulator's log ended early: {lines}"
                lines.append(line)
    finally:
        process.terminate()
        await process.wait()
    logged = [line for line in lines if not line.startswith("channel ")]
    access = [line for line in logged if "uvicorn.access" in line and "bot_api_webhook" in line]
    assert access and "/omnichannel_message/***/bot_api_webhook" in access[0], lines
    warning = next(line for line in logged if "could not reach" in line)
    assert "WARNING" in warning and "could not reach ***/send_message" in warning, warning
    assert not [line for line in logged if token in line or "reply-url-secret" in line], lines
