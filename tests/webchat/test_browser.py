"""The web chat in a real headless Chromium (the distribution's), driven by Playwright, against a real bridge
and the platform emulator: what a visitor does, with the keyboard as well as the mouse."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from litestar import Litestar, Response, get

from bridge.testing.server import serve
from tests.webchat.helpers import CHANNEL, ChatLoop, chat_loop

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
WAIT_MS = 10_000


def _unavailable(reason: str) -> None:
    """Skip on a developer's machine; fail under CI, where the browser test must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} and CI=true: the browser test must run (.ci/run installs chromium)")
    pytest.skip(reason)


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def _connected(page: Page) -> None:
    from playwright.async_api import expect

    await expect(page.locator(".ocb-status")).to_have_text("Connected", timeout=WAIT_MS)


async def _open(page: Page, chat: ChatLoop) -> None:
    await page.goto(f"{chat.url}/channels/{CHANNEL}/chat")
    await _connected(page)


async def _say(page: Page, text: str) -> None:
    box = page.get_by_label("Message")
    await box.fill(text)
    await box.press("Enter")


async def test_visitor_chats_uses_buttons_by_keyboard_and_keeps_history(
    chat: ChatLoop, browser: Browser, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    context = await browser.new_context()
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    await _open(page, chat)

    # Accessible structure: a labelled input, a send button, a polite live log, a heading with the title.
    await expect(page.get_by_role("heading", level=1)).to_have_text("Help <desk>")
    await expect(page).to_have_title("Help <desk>")
    log = page.get_by_role("log", name="Conversation")
    await expect(log).to_have_attribute("aria-live", "polite")
    await expect(page.get_by_role("button", name="Send")).to_be_visible()

    await _say(page, "hello")
    await expect(log.locator(".ocb-agent", has_text="You said: hello")).to_be_visible(timeout=WAIT_MS)
    mine = log.locator(".ocb-visitor", has_text="hello")
    await expect(mine).not_to_have_class("ocb-pending")
    await expect(mine.locator(".ocb-state")).to_have_text("")

    await _say(page, "menu")
    talk = page.get_by_role("button", name="Talk to a person")
    await expect(talk).to_be_visible(timeout=WAIT_MS)
    await expect(page.get_by_role("group", name="What would you like to do?")).to_be_visible()
    # Keyboard only: focus is still in the message box; Shift+Tab reaches the last button, Enter presses it.
    await expect(page.get_by_label("Message")).to_be_focused()
    await page.keyboard.press("Shift+Tab")
    await expect(talk).to_be_focused()
    assert await talk.evaluate("b => b.matches(':focus-visible')")
    await page.keyboard.press("Enter")
    await expect(log.locator(".ocb-agent", has_text="You pressed: Talk to a person")).to_be_visible(timeout=WAIT_MS)
    # And forwards with Tab from the conversation log, which is itself focusable for scrolling.
    await log.focus()
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Yes")).to_be_focused()

    await _say(page, "file")
    link = page.get_by_role("link", name="sample.txt")
    await expect(link).to_be_visible(timeout=WAIT_MS)
    await expect(link).to_have_attribute("href", f"{chat.emulator.url}/files/sample.txt")
    await page.screenshot(path=str(tmp_path / "webchat.png"), full_page=True)

    before = await log.locator(".ocb-msg").all_inner_texts()
    visitor = await page.evaluate("() => Object.keys(localStorage).filter(k => k.endsWith(':visitor'))"
                                  ".map(k => localStorage.getItem(k))[0]")
    assert visitor
    await page.reload()
    await _connected(page)
    await expect(log.locator(".ocb-msg")).to_have_count(len(before))
    await expect(log.locator(".ocb-agent", has_text="You said: hello")).to_be_visible()
    await expect(page.get_by_role("link", name="sample.txt")).to_be_visible()
    await expect(page.get_by_role("button", name="Talk to a person")).to_be_visible()
    await page.screenshot(path=str(tmp_path / "webchat-reloaded.png"), full_page=True)

    # Away: the tab is closed when the agent writes; the message is there on return.
    await page.close()
    await chat.agent_says(await chat.chat_id(visitor), {"kind": "operator", "text": "Still there?"})
    page = await context.new_page()
    await _open(page, chat)
    await expect(page.locator(".ocb-agent", has_text="Still there?")).to_be_visible()
    await context.close()
    assert errors == []


async def test_message_typed_while_the_platform_fails_is_sent_after_a_reload(
    chat: ChatLoop, browser: Browser
) -> None:
    from playwright.async_api import expect

    context = await browser.new_context()
    page = await context.new_page()
    await _open(page, chat)
    chat.emulator.add_fault(status=503, count=1)
    await _say(page, "do not lose me")
    mine = page.locator(".ocb-visitor", has_text="do not lose me")
    await expect(mine.locator(".ocb-state")).to_have_text("Not sent yet, retrying…", timeout=WAIT_MS)
    # Reloaded before the widget's own retry: the message waits in local storage and goes out on reconnect.
    await page.reload()
    await _connected(page)
    await expect(page.locator(".ocb-agent", has_text="You said: do not lose me")).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator(".ocb-visitor", has_text="do not lose me")).to_have_count(1)
    texts = [r.body["message"].get("text") for r in chat.emulator.received() if r.status == 200]
    assert texts == ["do not lose me"]
    await context.close()


async def test_widget_embedded_in_another_site(browser: Browser, tmp_path: Path) -> None:
    """A shop's page on another origin loads widget.js from the bridge; the bridge only lets that origin's
    pages open the socket."""
    from playwright.async_api import expect

    page_html: list[str] = []

    @get("/products")
    async def shop_page() -> Response[str]:
        return Response(page_html[0], media_type="text/html")

    async with serve(Litestar([shop_page])) as shop_server:
        shop = shop_server.url
        async with chat_loop(f"sqlite:///{tmp_path}/embed.db", allowed_origins=[shop]) as loop:
            page_html.append(
                '<!doctype html><html lang="en"><head><title>Shop</title></head><body><h1>Shop</h1>'
                f'<aside id="help"></aside><script src="{loop.url}/channels/{CHANNEL}/widget.js" '
                'data-target="#help" data-title="Ask us"></script></body></html>'
            )
            context = await browser.new_context()
            page = await context.new_page()
            await page.goto(f"{shop}/products")
            await _connected(page)
            await expect(page.get_by_role("heading", level=2)).to_have_text("Ask us")
            # The widget brought its own stylesheet along.
            await expect(page.locator("link[data-ocb-stylesheet]")).to_have_attribute(
                "href", f"{loop.url}/channels/{CHANNEL}/chat.css")
            await _say(page, "hi from the shop")
            await expect(page.locator(".ocb-agent", has_text="You said: hi from the shop")).to_be_visible(
                timeout=WAIT_MS)

            # The bridge's own page is another origin, not on the list: its socket is refused.
            other = await context.new_page()
            await other.goto(f"{loop.url}/channels/{CHANNEL}/chat")
            await expect(other.locator(".ocb-status")).to_contain_text("Reconnecting", timeout=WAIT_MS)
            assert loop.adapter.open_sockets() == 1
            await context.close()
