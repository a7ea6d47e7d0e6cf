"""The analyst's report over a live study: AAR results imported beside it, written by the CLI,
opened in headless Chromium with no console errors, and a screenshot kept."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.analysis.test_aar_import import seed_file
from tests.conftest import REPO
from tests.e2e.conftest import VANILLA

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def arena(*args, env):
    return subprocess.run([sys.executable, "-m", "study.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.browser
def test_report_from_a_live_study_opens_cleanly(server, tmp_path):
    ann = server.participant("ann", arm="human")
    bot = server.participant("claude-1", arm="ai", kind="agent")
    for client, source in ((ann, VANILLA), (bot, (REPO / "baselines" / "logconf.py")
                                           .read_text()), (ann, VANILLA + "\n# again\n")):
        client.wait(client.submit(source, "rt_sentiment").id, poll=0.1)
    files = []
    for s in (42, 43):
        path = tmp_path / f"vanilla_{s}.json"
        path.write_text(json.dumps(seed_file(seed=s)))
        files.append(str(path))
    env = {**os.environ, "ARENA_URL": server.url, "ARENA_TOKEN": server.admin_token}
    imported = arena("import-aar", *files, "--label", "AAR vanilla", env=env)
    assert imported.returncode == 0 and "imported 1 attempt" in imported.stdout, imported.stdout
    out = tmp_path / "report.html"
    made = arena("report", "--out", str(out), env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    tables = out.with_name("report_tables")
    gap = pd.read_csv(tables / "public_private_gap.csv")
    assert set(gap["display_name"]) >= {"ann", "claude-1"}
    assert set(pd.read_csv(tables / "time_to_threshold.csv")["axis"]) == {
        "calendar_hours", "own_hours", "active_hours", "compute_hours", "dollars"}
    assert (tables / "paired_attempts.parquet").exists()
    page = out.read_text()
    assert "<script" in page and "<script src=" not in page  # plotly.js inlined: offline

    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1200, "height": 900})
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.goto(Path(out).as_uri())
        tab.wait_for_selector(".plot-container", timeout=30000)
        assert tab.locator(".plot-container").count() >= 6
        tab.screenshot(path=str(ARTIFACTS / "report.png"), full_page=False)
        browser.close()
    assert errors == []


def test_report_cli_reads_the_plan_and_refuses_an_unknown_endpoint(server, tmp_path):
    ann = server.participant("ann", arm="human")
    ann.wait(ann.submit(VANILLA, "rt_sentiment").id, poll=0.1)
    server.participant("claude-1", arm="ai", kind="agent")  # enrolled, nothing submitted
    env = {**os.environ, "ARENA_URL": server.url, "ARENA_TOKEN": server.admin_token}
    bad = arena("report", "--out", str(tmp_path / "bad.html"), "--endpoint", "best_private",
                env=env)
    assert bad.returncode == 2 and "unknown endpoint 'best_private'" in bad.stdout
    assert not (tmp_path / "bad.html").exists()
    made = arena("report", "--out", str(tmp_path / "r.html"), "--endpoint", "oracle_private",
                 "--no-bands", env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    primary = pd.read_csv(tmp_path / "r_tables" / "primary.csv").iloc[0]
    # the default protocol pre-registers human vs ai; claude-1 counts at the floor
    assert primary["reading"].startswith("EXPLORATORY")
    assert (primary["arm_a"], primary["arm_b"], primary["n_a"], primary["n_b"]) == (
        "human", "ai", 1, 1)
    assert primary["mean_b"] == 0.0
    assert "ORACLE" in (tmp_path / "r.html").read_text()
