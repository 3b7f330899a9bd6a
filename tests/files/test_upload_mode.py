"""Telegram's `files_as: upload` end to end: the agent's file URL is downloaded by the bridge through the SSRF
guard (an allow-listed loopback file server stands in for an intranet one) and uploaded to the fake Telegram;
URLs the guard refuses go out as links, with a log line, and are never fetched."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.config import FilesConfig
from bridge.emulator import Script
from bridge.emulator.script import FileStep, Rule
from tests.files.file_server import FileServer
from tests.files.loop_support import ANN, SIGNING_KEY, Loop, run_loop

PDF = b"%PDF-1.7 quarterly numbers " * 200
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


def agent_script(files: FileServer) -> Script:
    def rule(word: str, step: FileStep) -> Rule:
        return Rule(on="text", match=word, reply=[step])

    return Script(rules=[
        rule("upload", FileStep(url=f"{files.url}/files/report.pdf", name="report.pdf", media_type="application/pdf")),
        rule("photo", FileStep(url=f"{files.url}/files/pic.png", media_type="image/png")),
        rule("internal", FileStep(url="http://10.0.0.1/internal.pdf", name="internal.pdf")),
        rule("metadata", FileStep(url="http://169.254.169.254/latest/meta-data/iam")),
        rule("redirect", FileStep(url=f"{files.url}/redirect?to=http://127.0.0.2:{files.port}/files/report.pdf")),
        rule("missing", FileStep(url=f"{files.url}/files/missing.pdf", name="missing.pdf")),
    ])


@pytest.fixture
async def loop(tmp_path: Path, file_server: FileServer) -> AsyncIterator[Loop]:
    file_server.add("report.pdf", PDF, "application/pdf")
    file_server.add("pic.png", PNG, "image/png")
    files = FilesConfig(signing_key=SIGNING_KEY, allow_private_networks=["127.0.0.1/32"])
    async with run_loop(tmp_path, files=files, telegram={"files_as": "upload"},
                        script=agent_script(file_server)) as running:
        yield running


async def ask(loop: Loop, text: str) -> None:
    seen = len(loop.emulator.replies())
    loop.tg.push_update(loop.tg.message_update(42, text=text, from_user=ANN))
    replies = await loop.emulator.wait_for_replies(seen + 1)
    assert replies[-1].status == 200, replies[-1].response


async def test_allow_listed_files_are_uploaded(loop: Loop, file_server: FileServer) -> None:
    await ask(loop, "upload")
    (call,) = await loop.tg.wait_for("sendDocument")
    assert call.params["chat_id"] == 42
    assert call.params["document"] == {"filename": "report.pdf", "content": PDF}
    await ask(loop, "photo")
    (call,) = await loop.tg.wait_for("sendPhoto")
    assert call.params["photo"] == {"filename": "pic.png", "content": PNG}  # the name came from the URL
    assert file_server.paths() == ["/files/report.pdf", "/files/pic.png"]
    assert loop.tg.calls_to("sendMessage") == []


@pytest.mark.parametrize(
    ("word", "url", "why"),
    [
        ("internal", "http://10.0.0.1/internal.pdf", "10.0.0.1 is a private network address"),
        ("metadata", "http://169.254.169.254/latest/meta-data/iam", "169.254.169.254 is a link-local address"),
        ("redirect", "{files}/redirect?to=http://127.0.0.2:{port}/files/report.pdf", "127.0.0.2 is a loopback"),
    ],
)
async def test_refused_urls_go_out_as_links_and_are_logged(
    word: str, url: str, why: str, loop: Loop, file_server: FileServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    url = url.format(files=file_server.url, port=file_server.port)
    await ask(loop, word)
    (call,) = await loop.tg.wait_for("sendMessage")
    assert call.params["text"].endswith(url)
    assert [c for c in loop.tg.calls if c.method.startswith("send") and c.method != "sendMessage"] == []
    refusals = [r for r in caplog.records if r.name == "bridge.fetch" and why in str(getattr(r, "reason", ""))]
    assert len(refusals) == 1
    assert refusals[0].levelno == logging.WARNING
    assert all(path.startswith("/redirect") for path in file_server.paths())


async def test_a_file_the_server_does_not_have_goes_out_as_a_link(loop: Loop, file_server: FileServer) -> None:
    await ask(loop, "missing")
    (call,) = await loop.tg.wait_for("sendMessage")
    assert call.params["text"] == f"missing.pdf\n{file_server.url}/files/missing.pdf"
    assert file_server.paths() == ["/files/missing.pdf"]
