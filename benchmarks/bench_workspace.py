"""Workspace page switches, warm, in a real browser: Debian's chromium (Playwright) against a
real `streamlit run` of the workspace and a real study server on loopback.

Usage: python -m benchmarks.bench_workspace
A switch is timed from the click on the sidebar link to the moment the page's heading is
visible and Streamlit's running indicator is gone (the page has finished its run). Each page is
visited once to warm up, then ROUNDS times; the table gives the median and the worst.
Target (issue 17): every switch under 1 s warm; the leaderboard loaded in under 1.5 s (its
first load in a fresh session is timed on its own).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from benchmarks.report import write_section
from participants.sdk import ArenaClient
from study.protocol import load_protocol
from study.server import create_study
from tests.participants.browser import CHROMIUM, CHROMIUM_ARGS, Workspace

REPO = Path(__file__).resolve().parent.parent
ROUNDS = 5
PAGES = [("Task brief", "Task brief"), ("Method editor", "Method editor"),
         ("Attempts", "My attempts"), ("Leaderboard", "Leaderboard"), ("Forum", "Forum"),
         ("Clock", "Clock")]
ATTEMPTS = 40  # a participant a few days in
OTHERS = 12  # others on the leaderboard, in two arms, each with a few scored attempts
EACH = 3


def _switch(page, link: str, heading: str) -> float:
    started = time.perf_counter()
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=link).click()
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=60_000)
    return time.perf_counter() - started


def measure(url: str, token: str) -> tuple[float, dict[str, list[float]]]:
    """The leaderboard's first (cold) load in a fresh browser session, then warm switches."""
    times: dict[str, list[float]] = {link: [] for link, _ in PAGES}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(url)
        page.get_by_label("Participant token", exact=True).fill(token)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Task brief")).to_be_visible(timeout=60_000)
        expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=60_000)
        first_board = _switch(page, "Leaderboard", "Leaderboard")
        for link, heading in PAGES:  # warm-up: first imports, first fetches
            _switch(page, link, heading)
        for _ in range(ROUNDS):
            for link, heading in PAGES:
                times[link].append(_switch(page, link, heading))
        browser.close()
    return first_board, times


def populate(url: str, admin_token: str) -> str:
    """A study a few days in: the benchmark's participant with ATTEMPTS attempts and OTHERS
    more on the board, every attempt run and scored by the server's workers (vanilla; a few
    fail on purpose: failed attempts count on the board too). Returns the participant's token."""
    source = (REPO / "baselines" / "vanilla.py").read_text()
    with ArenaClient(url, admin_token) as admin:
        admin.wait_ready(timeout=600, poll=0.2)
        token = admin.add_participant("bench", arm="human").token
        others = [admin.add_participant(f"other-{i}", arm=("human", "ai")[i % 2]).token
                  for i in range(OTHERS)]
    plan = [(token, i) for i in range(ATTEMPTS)] + [(t, i) for t in others for i in range(EACH)]
    submitted = []
    for who, i in plan:
        with ArenaClient(url, who) as client:
            text = source if i % 4 else "def run(ctx):\n    raise ValueError('on purpose')\n"
            submitted.append((who, client.submit(text + f"# {i}\n", "rt_sentiment").id))
    for who, attempt_id in submitted:
        with ArenaClient(url, who) as client:
            client.wait(attempt_id, timeout=3600, poll=0.5)
    return token


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        protocol = (REPO / "tests" / "protocols" / "small.toml").read_text().replace(
            "attempts_per_day = 5", "attempts_per_day = 1000").replace(
            "compute_seconds_per_day = 3600", "compute_seconds_per_day = 1e9")
        (folder / "bench.toml").write_text(protocol)
        admin_token = create_study(folder / "study", load_protocol(folder / "bench.toml")).token
        port = 8793
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "study.cli", "serve", "--data-dir",
                                   str(folder / "study"), "--port", str(port), "--slots", "2"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        workspace = Workspace(url, folder)
        try:
            started = time.perf_counter()
            token = populate(url, admin_token)
            print(f"populated in {time.perf_counter() - started:.0f} s")  # workers idle now
            workspace.start()
            first_board, times = measure(workspace.url, token)
        finally:
            workspace.stop()
            server.terminate()
            server.wait(20)
    load = os.getloadavg()[0]  # the machine is shared: say how busy it was
    rows = ["| page | median | worst |", "|---|---|---|"]
    for link, values in times.items():
        rows.append(f"| {link} | {statistics.median(values):.2f} s | {max(values):.2f} s |")
    body = (f"Warm page switches in chromium at 1440×900 ({ROUNDS} rounds after one warm-up; "
            f"click → heading shown and the page's run finished), a participant with "
            f"{ATTEMPTS} attempts and {OTHERS} others with {EACH} each on the board, all run "
            f"and scored (one in four failed on purpose) before timing; server and workspace "
            f"on this machine, workers idle; load average {load:.1f} at the end.\n\n"
            f"The leaderboard's first load, from the brief just after signing in, in a fresh "
            f"browser session on a workspace process just started (cold: the page's first "
            f"fetches; its imports may still be warming): "
            f"**{first_board:.2f} s** (target: under 1.5 s).\n\n" + "\n".join(rows))
    print(body)
    write_section("Workspace page switches (issue 17)", body)


if __name__ == "__main__":
    main()
