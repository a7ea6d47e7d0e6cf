"""End to end in a real browser: Debian's chromium, driven by Playwright, against a real
`streamlit run` of the workspace and a real study server. Screenshots go to test-artifacts/."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.participants.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, Workspace

pytestmark = pytest.mark.browser
TYPED = "# tuned from the browser"


@pytest.fixture(scope="module")
def workspace(arena, tmp_path_factory):
    ws = Workspace(arena.url, tmp_path_factory.mktemp("workspace"))
    ws.start()
    yield ws
    ws.stop()


@pytest.fixture
def page(workspace):
    assert CHROMIUM.exists(), "install Debian's chromium: apt-get install -y chromium"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        yield page
        browser.close()


def shot(page: Page, name: str) -> None:
    page.wait_for_timeout(400)  # let the last rerun paint
    page.screenshot(path=str(ARTIFACTS / f"workspace-{name}.png"), full_page=True)


def sign_in(page: Page, url: str, token: str) -> None:
    page.goto(url)
    page.get_by_label("Participant token", exact=True).fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Task brief")).to_be_visible()


def go(page: Page, link: str, heading: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=link).click()
    expect(page.get_by_role("heading", name=heading)).to_be_visible()


def test_sign_in_submit_watch_scored_post_and_leaderboard(arena, workspace, page):
    rae = arena.participant("rae-browser")
    sign_in(page, workspace.url, rae.token)
    assert rae.token not in page.url  # the token stays in the session, never in the URL
    shot(page, "01-brief")

    # Open a baseline from the brief into the editor and add a line by typing.
    page.get_by_role("tab", name="Baselines").click()
    vanilla = page.get_by_test_id("stExpander").filter(
        has=page.get_by_text("vanilla", exact=True))
    vanilla.locator("summary").click()
    vanilla.get_by_role("button", name="Open in the editor").click()
    expect(page.get_by_role("heading", name="Method editor")).to_be_visible()
    expect(page.get_by_text("Editing: baseline vanilla")).to_be_visible()
    ace = page.frame_locator('iframe[title="code_editor.code_editor"]')
    expect(ace.locator(".ace_content")).to_contain_text("def run(ctx):")
    ace.locator(".ace_content").click()
    page.keyboard.press("Control+End")
    page.keyboard.type(f"\n{TYPED}\n")
    shot(page, "02-editor")
    # Submit from inside the editor (Ctrl+Enter): the text and the intent travel together.
    page.keyboard.press("Control+Enter")
    expect(page.get_by_text("on rt_sentiment is")).to_be_visible()
    [attempt] = rae.attempts()
    assert TYPED in (attempt.source or "")  # what was typed is what the server runs
    expect(page.get_by_text("4 / 5")).to_be_visible()  # the quota moved
    shot(page, "02b-submitted")

    # Watch it get scored: the Attempts page refreshes itself (fragments), no reload.
    go(page, "Attempts", "My attempts")
    expect(page.get_by_test_id("stMetricValue").filter(has_text="scored")).to_be_visible(
        timeout=120_000)
    expect(page.get_by_test_id("stMetricValue").filter(has_text="±")).to_be_visible()
    shot(page, "03-attempts")
    scored = rae.attempt(attempt.id)

    # Post a finding linked to it; the score shown is the server's.
    go(page, "Forum", "Forum")
    page.get_by_label("Title").fill("Vanilla plus a comment")
    page.get_by_label("Finding (markdown)").fill("Same as **vanilla**; scored as expected.")
    page.get_by_test_id("stSelectbox").filter(has_text="Link one of my attempts").click()
    page.get_by_role("option").filter(has_text=attempt.id[:12]).click()
    page.get_by_role("button", name="Post").click()
    expect(page.get_by_text("Posted")).to_be_visible()
    expect(page.get_by_text(f"public PGR {scored.public.pgr:.2f}").first).to_be_visible()
    shot(page, "04-forum")

    go(page, "Leaderboard", "Leaderboard")
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()
    expect(page.locator(".js-plotly-plot")).to_be_visible()
    shot(page, "05-leaderboard")
    assert rae.participant_id in {r.participant_id for r in rae.leaderboard()}


def test_bad_token_message_in_the_browser(workspace, page):
    page.goto(workspace.url)
    page.get_by_label("Participant token", exact=True).fill("w2s_wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Your token was not accepted")).to_be_visible()
    assert "w2s_wrong" not in page.url
    shot(page, "00-bad-token")
