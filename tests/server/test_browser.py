"""The web page in a real browser: Debian's Chromium, headless, driven by Playwright (never `playwright install`).

Skips, saying why, only where /usr/bin/chromium is absent (`apt-get install -y chromium`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.server.conftest import GOLD_HEADING, QUESTION, RunningServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no /usr/bin/chromium: install it with `apt-get install -y chromium`"
)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e .[test]")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, server: RunningServer):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(30_000)
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith((server.url, "data:")) else outside.append(r.url))
    yield page
    context.close()
    assert outside == []  # nothing from a CDN, nothing beyond the server


def ask(page, question: str) -> None:
    page.fill("#question", question)
    page.keyboard.press("Enter")


def test_ask_watch_the_answer_stream_and_open_a_citation(page, server, deepseek):
    from playwright.sync_api import expect

    release = deepseek.pause_stream(after_chunks=3)
    page.goto(f"{server.url}/#token={server.token}")
    assert "token" not in page.url  # the token left the address bar
    ask(page, QUESTION)

    turn = page.locator(".turn").first
    expect(turn.locator(".question")).to_have_text(QUESTION)
    expect(turn.locator(".answer.streaming")).to_have_text(re.compile(r"\S+ \S+"))  # part of it, still streaming
    assert turn.locator(".sources").count() == 0
    release.set()

    expect(turn.locator(".answer")).not_to_have_class(re.compile("streaming"))
    expect(turn.locator(".sources li")).to_have_count(3)
    expect(turn.locator(".sources li").first).to_contain_text("en/faq/product_faq.md")
    expect(turn.locator(".sources li").first).to_contain_text(GOLD_HEADING)
    passage = turn.locator(".sources li").first.locator(".passage")
    expect(passage).to_be_hidden()

    turn.locator(".answer a.cite", has_text="[1]").first.click()
    expect(passage).to_be_visible()
    expect(passage).to_contain_text("Milvus deals with two types of data")


def test_a_follow_up_keeps_the_conversation(page, server, deepseek):
    from playwright.sync_api import expect

    page.goto(f"{server.url}/#token={server.token}")
    ask(page, QUESTION)
    expect(page.locator(".turn").first.locator(".sources li")).to_have_count(3)
    ask(page, "and where is the metadata kept?")
    expect(page.locator(".turn")).to_have_count(2)
    expect(page.locator(".turn").nth(1).locator(".sources li")).to_have_count(3)
    rewrite = [r for r in deepseek.chat_requests() if "<context>" not in r.text("user")][-1]
    assert QUESTION in rewrite.text("user") and "metadata" in rewrite.text("user")


def test_errors_show_as_one_line(page, server, deepseek):
    from playwright.sync_api import expect

    deepseek.fail(401)
    page.goto(f"{server.url}/#token={server.token}")
    ask(page, QUESTION)
    error = page.locator(".turn .error")
    expect(error).to_contain_text("rejected the API key")
    assert "\n" not in error.inner_text() and deepseek.api_key[-4:] not in page.content()


def test_without_a_token_the_page_asks_for_it(page, server, deepseek):
    from playwright.sync_api import expect

    page.goto(f"{server.url}/")
    ask(page, QUESTION)
    expect(page.locator("#token-form")).to_be_visible()
    page.fill("#token", server.token)
    page.click("#token-form button")
    expect(page.locator(".turn .sources li")).to_have_count(3)
