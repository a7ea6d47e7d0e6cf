"""Label probing through the real door: feedback coarse in items, the detector on public items,
a padded campaign flagged early, the Ladder wherever a score appears, exit codes charged."""

import json

import numpy as np
import pytest

from participants.sdk import ArenaAPIError
from participants.tools import ToolContext, call_tool
from study.records import AttemptStatus
from study.scoring import public_mask
from tests.conftest import REPO
from tests.e2e.conftest import VANILLA, running_server

PROBING = REPO / "tests" / "protocols" / "probing.toml"

# Predictions that do not depend on the seed or its teacher (the test features' first principal
# component: numpy only, so no seed pays for loading an encoder); FLIPS lists the test items
# whose predictions are flipped, as a prober does.
PROBE = """
import numpy as np
FLIPS = {flips}

def run(ctx):
    X = ctx.strong_features("test")
    centred = X - X.mean(axis=0)
    s = centred @ np.linalg.svd(centred, full_matrices=False)[2][0]
    p = 1 / (1 + np.exp(-(s - np.median(s)) * 50))
    p[FLIPS] = 1 - p[FLIPS]
    return p
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory, rt_task):
    """One server for the module (each test uses its own participants): starting one per
    test is most of the time on a loaded machine."""
    with running_server(tmp_path_factory.mktemp("probing"), PROBING) as server:
        yield server


def _submit(client, flips):
    return client.wait(client.submit(PROBE.format(flips=sorted(int(i) for i in flips)),
                                     "rt_sentiment").id, poll=0.1)


def _public_items(live, attempt_id) -> np.ndarray:
    with live.admin() as admin:
        return np.array(admin.item_results(attempt_id)["public"], dtype=bool)


def test_a_padded_probing_campaign_is_flagged_within_its_first_five(live):
    """The attacker of the issue, with the split now secret: each probe flips one target item
    plus 24 random others, which keeps each pair of attempts more than probe_max_diff public
    items apart. The chain of small public steps gives it away at the fourth attempt; the
    rest of a 40-attempt campaign cannot undo the flag."""
    mal = live.participant("mal")
    rng = np.random.default_rng(7)
    campaign = [_submit(mal, [])]
    n_test = len(_public_items(live, campaign[0].id))
    for target in range(5):
        padding = rng.choice(np.arange(100, n_test), size=24, replace=False)
        campaign.append(_submit(mal, [target, *padding]))
    assert all(a.status is AttemptStatus.SCORED for a in campaign)
    with live.admin() as admin:
        flagged = {f.attempt_id for f in admin.flags()
                   if f.kind in ("probing", "probing_chain")}
        chain = [f for f in admin.flags() if f.kind == "probing_chain"]
    first = next(i for i, a in enumerate(campaign, 1) if a.id in flagged)
    assert first <= 5, f"first flag at attempt {first}"
    assert chain and chain[0].detail["small_steps"] >= 3
    assert chain[0].detail["differing_public_items"] <= 25


def test_honest_resubmissions_are_not_small_steps(live):
    """Vanilla with fresh server-chosen seeds moves ~30-45 public items between attempts."""
    ann = live.participant("ann")
    runs = [ann.wait(ann.submit(VANILLA, "rt_sentiment").id, poll=0.1) for _ in range(3)]
    with live.admin() as admin:
        mine = [f for f in admin.flags() if f.attempt_id in {r.id for r in runs}
                and f.kind in ("probing", "probing_chain")]
    assert mine == []


def test_flips_are_counted_on_public_items_only(live, rt_task):
    uma = live.participant("uma")
    base = _submit(uma, [])
    public = _public_items(live, base.id)
    # The membership attack of the issue: salted with the task's content hash (once in the
    # bundle folder's name) the split matched the server's 2,000 of 2,000; now a coin's half.
    recomputed = public_mask([ex.uid for ex in rt_task.splits["test"]],
                             rt_task.info.content_hash, 0.5)
    assert 0.4 < float((recomputed == public).mean()) < 0.6
    pub_items, priv_items = np.flatnonzero(public)[:2], np.flatnonzero(~public)[:12]
    one_public = _submit(uma, [pub_items[0]])
    private_padding = _submit(uma, [pub_items[1], *priv_items])  # 13 flips, 1 public
    with live.admin() as admin:
        pairs = {(f.attempt_id, f.detail["other_attempt"], f.detail["differing_items"])
                 for f in admin.flags() if f.kind == "probing"}
    assert (one_public.id, base.id, 1) in pairs
    assert (private_padding.id, base.id, 1) in pairs  # the private padding counts for nothing
    assert (private_padding.id, one_public.id, 2) in pairs


def test_public_feedback_moves_in_steps_of_items(live):
    ida = live.participant("ida")
    base = _submit(ida, [])
    public = _public_items(live, base.id)
    view = ida.attempt(base.id).public
    assert view.subsets == {} and view.pgr_per_seed == []  # a small subset resolves one item
    with live.admin() as admin:
        exact = admin.attempt(base.id).public
    assert view.pgr <= exact.pgr + 0.005  # floored, then rounded
    # One public flip moves the exact count by one item; what the participant sees moves only
    # when the count crosses a multiple of the step (10 items).
    count = exact.accuracy * exact.n
    flip = _submit(ida, [int(np.flatnonzero(public)[0])])
    with live.admin() as admin:
        moved = admin.attempt(flip.id).public.accuracy * exact.n - count
    assert abs(abs(moved) - 1) < 1e-6
    crossed_up = (round(count + moved, 6) // 10) > (round(count, 6) // 10)
    # The Ladder compares coarse scores too: the flip is released only if it crossed upwards.
    assert flip.released == crossed_up
    if flip.released:
        assert ida.attempt(flip.id).public.pgr > view.pgr


def test_the_forum_and_leaderboard_keep_the_ladder(live):
    vic, wes = live.participant("vic"), live.participant("wes")
    first = _submit(vic, [])
    again = _submit(vic, [])  # the same score: withheld by the Ladder
    assert first.released and not again.released
    vic.post("result", "my score", "see the attempt", attempt_id=again.id)
    seen = [p for p in wes.forum() if p.attempt_id == again.id]
    assert seen and seen[0].attempt_public_pgr is None and seen[0].attempt_public_pgr_ci95 is None
    with live.admin() as admin:
        staff = [p for p in admin.forum() if p.attempt_id == again.id]
    assert staff[0].attempt_public_pgr is not None
    board = [r for r in wes.leaderboard() if r.participant_id == vic.participant_id]
    assert [r.best_attempt_id for r in board] == [first.id]
    assert board[0].best_pgr == vic.attempt(first.id).public.pgr  # the same coarse value
    # An agent's MCP tools read the same views: no withheld score there either.
    tools = ToolContext(client=wes)
    posts = json.loads(call_tool(tools, "read_forum", {})[0])["posts"]
    (post,) = [p for p in posts if p.get("attempt_id") == again.id]
    assert "attempt_public_pgr" not in post and "attempt_public_pgr_ci95" not in post
    shown = json.loads(call_tool(tools, "leaderboard", {"task": "rt_sentiment"})[0])
    assert [r["best_attempt_id"] for r in shown if r["participant_id"] ==
            vic.participant_id] == [first.id]
    mine = json.loads(call_tool(ToolContext(client=vic), "get_attempt",
                                {"attempt_id": again.id})[0])
    assert "public" not in mine and "Ladder" in mine["public_withheld"]
    # Exports (exact scores) are for analysts only.
    with pytest.raises(ArenaAPIError) as refused:
        wes.export("attempts")
    assert refused.value.status == 403


def test_exit_137_is_charged_and_the_next_participant_is_served(live):
    eve, joe = live.participant("eve"), live.participant("joe")
    source = (REPO / "tests" / "attacks" / "exit_137.py").read_text()
    view = eve.wait(eve.submit(source, "rt_sentiment").id, poll=0.1)
    assert view.status is AttemptStatus.FAILED and view.error_kind == "exit code 137"
    assert view.tries == 1  # not requeued as an infrastructure fault
    assert eve.quota().attempts_used == 1
    assert joe.wait(joe.submit(VANILLA, "rt_sentiment").id, poll=0.1).status is \
        AttemptStatus.SCORED
