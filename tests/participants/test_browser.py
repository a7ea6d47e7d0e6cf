"""End to end in a real browser: Debian's chromium, driven by Playwright, against a real
`streamlit run` of the workspace and a real study server. Screenshots of every page at
1440×900 go to test-artifacts/."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.e2e.conftest import VANILLA
from tests.participants.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, Workspace
from tests.study.test_workspace_api import WATCHED

# Slow enough to watch from a browser on a loaded machine: 16 steps of 0.6 s per seed.
SLOW = WATCHED.replace("range(8)", "range(16)").replace("step + 1, 8", "step + 1, 16").replace(
    "time.sleep(0.4)", "time.sleep(0.6)")
PROGRESS = re.compile(r"running · (\d+) / 16")

pytestmark = pytest.mark.browser
expect.set_options(timeout=30_000)  # a loaded 2-core machine; speed is measured elsewhere
TYPED = "# tuned from the browser"
PAGES = [("Task brief", "Task brief", "brief"), ("Method editor", "Method editor", "editor"),
         ("Attempts", "My attempts", "attempts"), ("Experiments", "Experiments", "experiments"),
         ("Leaderboard", "Leaderboard", "leaderboard"),
         ("Forum", "Forum", "forum"), ("Clock", "Clock", "clock")]
STAFF_PAGES = [("Analyst view", "Analyst view", "analyst"),
               ("Gap closure", "Gap closure", "gap-closure"),
               ("Agents' usage", "Agents' usage", "agents")]


@pytest.fixture(scope="module")
def workspace(arena, tmp_path_factory):
    ws = Workspace(arena.url, tmp_path_factory.mktemp("workspace"))
    ws.start()
    yield ws
    ws.stop()


@pytest.fixture
def browser():
    assert CHROMIUM.exists(), "install Debian's chromium: apt-get install -y chromium"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.console_errors = []  # type: ignore[attr-defined]
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
    page.on("pageerror", lambda e: page.console_errors.append(str(e)))
    # A request aborted because the test navigated away is not a failure of the page.
    page.on("requestfailed", lambda r: r.failure != "net::ERR_ABORTED" and
            page.console_errors.append(f"request failed: {r.url}"))
    page.on("response", lambda r: r.status >= 400 and page.console_errors.append(
        f"HTTP {r.status}: {r.url}"))
    yield page
    context.close()


# Two failures that are not the workspace's, each allowed only with the request it explains:
# - the code editor component (streamlit-code-editor, third party) imports its font from Google
#   Fonts; offline that fails and Ace falls back to the browser's monospace font;
# - opening a deep link (/editor, /attempts?…) Streamlit's frontend looks for its server under
#   that path first (/editor/_stcore/health, …/host-config), gets 404, then finds it at the root.
EDITOR_FONT = "https://fonts.googleapis.com/css2?family=Source+Code+Pro"
BASE_PATH_PROBE = re.compile(r"^HTTP 404: http://[^/]+/[\w-]+/_stcore/(health|host-config)$")
NOT_RESOLVED = "Failed to load resource: net::ERR_NAME_NOT_RESOLVED"
NOT_FOUND = "Failed to load resource: the server responded with a status of 404 (Not Found)"


def errors_of(page: Page) -> list[str]:
    """Console errors, page errors, failed requests and HTTP errors, less the two above."""
    seen = page.console_errors
    fonts = sum(EDITOR_FONT in e for e in seen)
    probes = sum(bool(BASE_PATH_PROBE.match(e)) for e in seen)
    rest = [e for e in seen if EDITOR_FONT not in e and not BASE_PATH_PROBE.match(e)]
    for line, allowed in ((NOT_RESOLVED, fonts), (NOT_FOUND, probes)):
        while allowed and line in rest:
            rest.remove(line)
            allowed -= 1
    return rest


def shot(page: Page, name: str) -> None:
    """A 1440×900 screenshot once the page has finished: no run, no spinner, charts drawn."""
    settle(page)
    expect(page.get_by_test_id("stSpinner")).to_have_count(0, timeout=60_000)
    # Cached functions' spinners (the analyst pages' "Building the tables…", "Loading…").
    expect(page.get_by_text(re.compile(r"^(Building|Loading) .*…$"))).to_have_count(
        0, timeout=120_000)
    charts = page.get_by_test_id("stPlotlyChart")
    for i in range(charts.count()):
        expect(charts.nth(i).locator(".main-svg").first).to_be_attached()
    # Attached is not drawn: on a loaded machine plotly paints a moment later.
    page.wait_for_function("""() => Array.from(document.querySelectorAll('.js-plotly-plot'))
        .every(div => div._fullLayout && div.querySelector('.main-svg .cartesianlayer, '
                                                           + '.main-svg .infolayer'))""")
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / f"workspace-{name}.png"))


def sign_in(page: Page, url: str, token: str, heading: str = "Task brief") -> None:
    page.goto(url)
    page.get_by_label("Participant token", exact=True).fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()


def settle(page: Page) -> None:
    """Wait until the rerun in flight has painted (the status widget shows while one runs)."""
    page.wait_for_timeout(300)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)


def go(page: Page, link: str, heading: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=link).click()
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()


EDITOR = '[data-stale="false"] iframe[title="code_editor.code_editor"]'


def ace(page: Page):
    """The editor's text. While a loaded text mounts a fresh editor, the old one stays a moment,
    marked stale: only the current one counts."""
    return page.frame_locator(EDITOR).locator(".ace_content")


def test_sign_in_submit_watch_scored_post_and_leaderboard(arena, workspace, page):
    rae = arena.participant("rae-browser")
    sign_in(page, workspace.url, rae.token)
    assert rae.token not in page.url  # no secret in the URL
    assert "w2sw_" not in page.url

    # Clock in from the sidebar, which every page shows.
    page.get_by_role("button", name="Clock in").click()
    expect(page.get_by_test_id("stSidebar").get_by_text("Clocked in")).to_be_visible()
    settle(page)

    # Open a baseline from the brief into the editor and add a line by typing.
    page.get_by_role("tab", name="Baselines").click()
    vanilla = page.get_by_test_id("stExpander").filter(
        has=page.get_by_text("vanilla", exact=True))
    vanilla.locator("summary").click()
    settle(page)
    vanilla.get_by_role("button", name="Open in the editor").click()
    expect(page).to_have_url(re.compile(r"/editor$"))
    expect(page.get_by_role("heading", name="Method editor")).to_be_visible()
    expect(page.get_by_text("Editing: baseline vanilla")).to_be_visible()
    expect(ace(page)).to_contain_text("def run(ctx):")
    ace(page).click()
    page.keyboard.press("Control+End")
    page.keyboard.type(f"\n{TYPED}\n")
    expect(page.get_by_text("baseline vanilla, edited")).to_be_visible()
    # Submit from inside the editor (Ctrl+Enter): the text and the intent travel together.
    page.keyboard.press("Control+Enter")
    expect(page.get_by_text("on rt_sentiment is")).to_be_visible()
    [attempt] = rae.attempts()
    assert TYPED in (attempt.source or "")  # what was typed is what the server runs
    expect(page.get_by_text("4 / 5")).to_be_visible()  # the quota moved

    # Watch it get scored: the attempt page refreshes itself (a fragment), no reload.
    page.get_by_role("link", name="Watch it run").click()
    expect(page).to_have_url(re.compile(f"attempts\\?attempt={attempt.id}"))
    expect(page.get_by_test_id("stMetricValue").filter(has_text="scored")).to_be_visible(
        timeout=120_000)
    expect(page.get_by_test_id("stMetricValue").filter(has_text="[")).to_be_visible()
    scored = rae.attempt(attempt.id)

    # Post a finding linked to it; the score shown is the server's; the form empties.
    go(page, "Forum", "Forum")
    page.get_by_label("Title").fill("Vanilla plus a comment")
    page.get_by_label("Finding (markdown)").fill("Same as **vanilla**; scored as expected.")
    page.get_by_test_id("stSelectbox").filter(has_text="Link one of my attempts").click()
    page.get_by_role("option").filter(has_text=attempt.id[:12]).click()
    page.get_by_role("button", name="Post").click()
    expect(page.get_by_text("Posted")).to_be_visible()
    expect(page.get_by_label("Title")).to_have_value("")
    expect(page.get_by_text(f"public PGR {scored.public.pgr:.2f}").first).to_be_visible()
    link = page.get_by_role("link", name=attempt.id[:12])
    expect(link).to_have_attribute("href", re.compile(f"attempts\\?attempt={attempt.id}"))

    go(page, "Leaderboard", "Leaderboard")
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()
    expect(page.locator(".js-plotly-plot")).to_be_visible()
    assert rae.participant_id in {r.participant_id for r in rae.leaderboard()}
    assert errors_of(page) == []


def test_upload_box_states_one_limit_and_the_editor_marks_the_broken_line(
        arena, workspace, page, tmp_path):
    wyn = arena.participant("wyn-upload")
    limit = wyn.study().limits["max_source_bytes"]
    sign_in(page, workspace.url, wyn.token)
    go(page, "Method editor", "Method editor")
    uploader = page.get_by_test_id("stFileUploader")
    # One limit, the study's; Streamlit's own "200MB per file" line is not shown.
    expect(uploader).to_contain_text(f"at most {limit:,} bytes")
    settle(page)
    assert "per file" not in page.locator("body").inner_text()

    # Over the study's limit (under the widget's MB): refused, the message under the box.
    big = tmp_path / "big.py"
    big.write_text("# x\n" * (limit // 4 + 1000))
    uploader.locator("input[type=file]").set_input_files(big)
    error = page.get_by_test_id("stAlert").filter(has_text=f"big.py is {big.stat().st_size:,}")
    expect(error).to_be_visible()
    box, shown = uploader.bounding_box(), error.bounding_box()
    assert 0 <= shown["y"] - (box["y"] + box["height"]) < 120, (box, shown)  # right below
    assert abs(shown["x"] - box["x"]) < 40, (box, shown)  # in the same column
    # Past the widget's own limit (server.maxUploadSize): Streamlit refuses it before upload.
    huge = tmp_path / "huge.py"
    huge.write_text("#" * (2 * 1024 * 1024))
    uploader.locator("input[type=file]").set_input_files(huge)
    chip = uploader.get_by_test_id("stFileChip").filter(has_text="huge.py")
    expect(chip.get_by_test_id("stFileChipIconError")).to_be_visible()
    chip.hover()
    expect(page.get_by_text(re.compile(r"File must be 1(\.0)? ?MB or smaller"))).to_be_visible()
    assert not any("huge.py" in t for t in page.get_by_test_id("stAlert").all_inner_texts())

    # A file with a broken line loads, and the editor marks that line.
    typo = tmp_path / "typo.py"
    typo.write_text("def run(ctx):\n    x = 1\n    return x +\n")
    uploader.locator("input[type=file]").set_input_files(typo)
    expect(ace(page)).to_contain_text("return x +")
    expect(page.get_by_text("file typo.py")).to_be_visible()
    expect(page.get_by_text("method.py line 3")).to_be_visible()
    expect(error).to_have_count(0)  # the upload error went with the good file
    marker = page.frame_locator(EDITOR).locator(".ace_gutter-cell.ace_error")
    expect(marker).to_have_count(1)
    expect(marker).to_have_text("3")
    # Fixed, the marker goes.
    ace(page).click()
    page.keyboard.press("Control+End")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("End")
    page.keyboard.type(" 1")
    expect(page.get_by_text("method.py line 3")).to_have_count(0)
    expect(marker).to_have_count(0)
    shot(page, "editor-upload")
    assert errors_of(page) == []
    assert wyn.attempts() == []


def test_reload_keeps_the_session_and_the_draft(arena, workspace, page):
    sid = arena.participant("sid-reload")
    sign_in(page, workspace.url, sid.token)
    go(page, "Method editor", "Method editor")
    ace(page).click()
    page.keyboard.type("def run(ctx):\n    return None  # not submitted yet")
    for _ in range(40):  # the editor's debounce, then the page saves the draft
        if (draft := sid.draft()) and "not submitted yet" in draft.source:
            break
        page.wait_for_timeout(250)
    assert "not submitted yet" in sid.draft().source
    # What the browser keeps is a server-issued session, never the participant's token.
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    assert cookies.get("w2s_session") and sid.token not in cookies.values()
    assert sid.token not in page.content()
    page.reload()
    expect(page.get_by_role("heading", name="Method editor")).to_be_visible()  # same URL
    expect(ace(page)).to_contain_text("not submitted yet")
    # A new tab of the same browser is signed in too; signing out ends the session.
    other = page.context.new_page()
    other.goto(f"{workspace.url}/clock")
    expect(other.get_by_role("heading", name="Clock")).to_be_visible()
    other.get_by_role("button", name="Sign out").click()
    expect(other.get_by_label("Participant token", exact=True)).to_be_visible()
    page.reload()
    expect(page.get_by_label("Participant token", exact=True)).to_be_visible()
    assert errors_of(page) == []


def test_deep_link_shows_live_progress_and_metrics(arena, workspace, page):
    tao = arena.participant("tao-live")
    sign_in(page, workspace.url, tao.token)
    view = tao.submit(SLOW, "rt_sentiment")
    page.goto(f"{workspace.url}/attempts?attempt={view.id}")
    expect(page.get_by_role("heading", name="My attempts", exact=True)).to_be_visible()
    expect(page.get_by_role("combobox", name="Attempt")).to_have_value(re.compile(view.id[:12]))
    running = page.get_by_text(PROGRESS)
    expect(running.first).to_be_visible(timeout=120_000)
    first = int(PROGRESS.search(running.first.inner_text()).group(1))
    expect(page.get_by_role("heading", name="Metrics (ctx.log)")).to_be_visible()
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    shot(page, "attempt-running")

    def moved() -> bool:
        texts = page.get_by_text(PROGRESS).all_inner_texts()
        return any(int(PROGRESS.search(t).group(1)) > first for t in texts) or \
            page.get_by_text(re.compile(r"· ok in")).count() > 0

    for _ in range(60):
        if moved():
            break
        page.wait_for_timeout(500)
    assert moved(), "the progress bar did not move"
    expect(page.get_by_test_id("stMetricValue").filter(has_text="scored")).to_be_visible(
        timeout=180_000)
    expect(page.get_by_role("heading", name="Output per seed")).to_be_visible()
    scored = tao.attempt(view.id)
    for seed in scored.seeds:  # every seed's output, and a metrics line per seed
        page.get_by_role("tab", name=f"seed {seed}", exact=True).click()
        expect(page.get_by_text(f"seed {seed} done")).to_be_visible()
    names = page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot'))
        .flatMap(div => (div._fullData || []).map(t => t.name || ''))""")
    assert {f"seed {seed}" for seed in scored.seeds} <= set(names), names
    shot(page, "attempt-scored")
    assert errors_of(page) == []


def test_every_page_at_1440x900_without_console_errors(arena, workspace, page):
    uma = arena.participant("uma-pages")
    uma.submit("def run(ctx):\n    raise ValueError('for the screenshot')\n", "rt_sentiment")
    uma.wait(uma.submit(VANILLA, "rt_sentiment").id, timeout=180, poll=0.5)  # one improvement
    sign_in(page, workspace.url, uma.token)
    # .streamlit/config.toml: no Deploy button or developer menu for participants.
    expect(page.get_by_role("button", name="Deploy")).to_have_count(0)
    expect(page.get_by_test_id("stAppDeployButton")).to_have_count(0)
    for link, heading, name in PAGES:
        go(page, link, heading)
        shot(page, name)
    analyst = arena.participant("val-analyst", role="analyst")
    settle(page)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Participant token", exact=True)).to_be_visible()
    sign_in(page, workspace.url, analyst.token)
    for link, heading, name in STAFF_PAGES:
        go(page, link, heading)
        if name == "gap-closure":
            one_improvement_runs_to_now(page)
        shot(page, name)
    assert errors_of(page) == []


def one_improvement_runs_to_now(page: Page) -> None:
    """The human arm has one scored attempt: its frontier is a line from it to now, not a dot."""
    # _fullData: the traces as plotly.js drew them (plotly.py sends arrays base64-encoded).
    script = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
        .flatMap(div => (div._fullData || []).map(t => ({
            name: t.name || '', x: Array.from(t.x || []), y: Array.from(t.y || [])})))"""
    page.wait_for_function(f"() => ({script})().some(t => t.name.includes('best in arm'))",
                           timeout=120_000)  # the analyst page builds its tables first
    traces = page.evaluate(script)
    names = [t["name"] for t in traces]
    best = [t for t in traces if t["name"].startswith("human best in arm")]
    assert len(best) == 1, names
    [best] = best
    xs = [x for x, y in zip(best["x"], best["y"], strict=True) if x is not None and y is not None]
    assert len(xs) >= 2 and xs[-1] > xs[0], best


def test_bad_token_message_in_the_browser(workspace, page):
    page.goto(workspace.url)
    page.get_by_label("Participant token", exact=True).fill("w2s_wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Your token was not accepted")).to_be_visible()
    assert "w2s_wrong" not in page.url
    shot(page, "sign-in-bad-token")
