"""Workspace page switches, warm, in a real browser: Debian's chromium (Playwright) against a
real `streamlit run` of the workspace and a real study server on loopback.

Usage: python -m benchmarks.bench_workspace
A switch is timed from the click on the sidebar link to the moment the page's heading is
visible and Streamlit's running indicator is gone (the page has finished its run). Each page is
visited once to warm up, then ROUNDS times; the table gives the median and the worst.
Target (issue 17): every switch under 1 s warm; the leaderboard loaded in under 1.5 s.
"""

from __future__ import annotations

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
ATTEMPTS = 40  # a participant a few days in (queued: the server runs no worker here)


def _switch(page, link: str, heading: str) -> float:
    started = time.perf_counter()
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=link).click()
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=60_000)
    return time.perf_counter() - started


def measure(url: str, token: str) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {link: [] for link, _ in PAGES}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(url)
        page.get_by_label("Participant token", exact=True).fill(token)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Task brief")).to_be_visible(timeout=60_000)
        for link, heading in PAGES:  # warm-up: first imports, first fetches
            _switch(page, link, heading)
        for _ in range(ROUNDS):
            for link, heading in PAGES:
                times[link].append(_switch(page, link, heading))
        browser.close()
    return times


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
                                   str(folder / "study"), "--port", str(port), "--slots", "0"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        workspace = Workspace(url, folder)
        try:
            with ArenaClient(url, admin_token) as admin:
                admin.wait_ready(timeout=600, poll=0.2)
                token = admin.add_participant("bench", arm="human").token
            with ArenaClient(url, token) as client:
                source = (REPO / "baselines" / "vanilla.py").read_text()
                for i in range(ATTEMPTS):
                    client.submit(source + f"# {i}\n", "rt_sentiment")
            workspace.start()
            times = measure(workspace.url, token)
        finally:
            workspace.stop()
            server.terminate()
            server.wait(20)
    rows = ["| page | median | worst |", "|---|---|---|"]
    for link, values in times.items():
        rows.append(f"| {link} | {statistics.median(values):.2f} s | {max(values):.2f} s |")
    body = (f"Warm page switches in chromium at 1440×900 ({ROUNDS} rounds after one warm-up; "
            f"click → heading shown and the page's run finished), a participant with "
            f"{ATTEMPTS} attempts; server and workspace on this machine.\n\n" + "\n".join(rows))
    print(body)
    write_section("Workspace page switches (issue 17)", body)


if __name__ == "__main__":
    main()
