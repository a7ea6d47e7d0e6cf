"""The forum as a research channel: pages and filters, result posts backed by a scored
attempt, one post per idempotency key, code snapshots for arm-mates (logged) when the protocol
allows them, and the mirror that writes the forum into an agent's workspace."""

import pytest

from participants.agents.mirror import ForumMirror
from participants.sdk import ArenaAPIError
from tests.conftest import REPO
from tests.e2e.conftest import SMALL, make_server

VANILLA = (REPO / "baselines" / "vanilla.py").read_text()
BROKEN = "def run(ctx):\n    raise ValueError('not today')\n"


def scored(client):
    attempt = client.submit(VANILLA, "rt_sentiment")
    return client.wait(attempt.id, timeout=600)


def test_result_posts_need_a_scored_attempt_and_keys_make_posts_once(server):
    alice = server.participant("alice")
    with pytest.raises(ArenaAPIError) as no_link:
        alice.post("result", "PGR 0.9!", "trust me")
    assert no_link.value.status == 422 and "scored attempt" in no_link.value.message
    broken = alice.wait(alice.submit(BROKEN, "rt_sentiment").id, timeout=600)
    assert broken.status.value == "failed"
    with pytest.raises(ArenaAPIError) as unscored:
        alice.post("result", "broken", "failed", attempt_id=broken.id)
    assert unscored.value.status == 422 and "failed" in unscored.value.message
    done = scored(alice)
    first = alice.post("result", "vanilla", "scores", attempt_id=done.id,
                       idempotency_key="k1")
    again = alice.post("result", "vanilla", "scores", attempt_id=done.id,
                       idempotency_key="k1")
    assert again.id == first.id and first.attempt_public_pgr == done.public.pgr
    alice.post("hypothesis", "vanilla", "scores")  # no key given: the SDK makes a fresh one
    assert len(alice.forum()) == 2
    bob = server.participant("bob")
    with pytest.raises(ArenaAPIError) as foreign:
        bob.post("result", "mine", "not mine", attempt_id=done.id)
    assert foreign.value.status == 404


def test_forum_pages_and_filters(server):
    alice, bob = server.participant("alice"), server.participant("bob")
    for i in range(5):
        alice.post("insight", f"a{i}", "text")
    bob.post("hypothesis", "b0", "text")
    pages = [alice.forum(limit=2, offset=o) for o in (0, 2, 4, 6)]
    titles = [p.title for page in pages for p in page]
    assert titles == ["b0", "a4", "a3", "a2", "a1", "a0"]  # newest first, no gaps, no repeats
    assert [len(p) for p in pages] == [2, 2, 2, 0]
    assert [p.title for p in alice.forum(author="bob")] == ["b0"]
    assert [p.title for p in alice.forum(author=bob.participant_id)] == ["b0"]
    assert len(alice.forum(kind="insight")) == 5
    with pytest.raises(ArenaAPIError) as bad:
        alice.forum(kind="gossip")
    assert bad.value.status == 422
    # the fuzzer's page offset (past BIGINT) was a database error, a 500
    with pytest.raises(ArenaAPIError) as huge:
        alice.forum(offset=23699165321110913024)
    assert huge.value.status == 422


@pytest.fixture
def sharing_server(tmp_path, rt_task):
    text = SMALL.read_text() + "\n[forum]\nshare_code_within_arm = true\n"
    protocol = tmp_path / "share.toml"
    protocol.write_text(text)
    live = make_server(tmp_path, protocol)
    live.start()
    yield live
    live.stop()


def test_arm_mates_download_linked_code_and_each_read_is_logged(sharing_server):
    server = sharing_server
    ann, ben = server.participant("ann"), server.participant("ben")
    bot = server.participant("bot-1", arm="ai", kind="agent")
    done = scored(ann)
    with pytest.raises(ArenaAPIError) as unlinked:
        ben.attempt_code(done.id)
    assert unlinked.value.status == 404  # not linked on the forum: not shared
    ann.post("result", "vanilla", "see code", attempt_id=done.id)
    snap = ben.attempt_code(done.id)
    assert snap.source == VANILLA and snap.author == "ann"
    with pytest.raises(ArenaAPIError) as other_arm:
        bot.attempt_code(done.id)
    assert other_arm.value.status == 404
    with server.admin() as admin:
        reads = admin.code_reads()
    assert [(r["reader"], r["author"], r["attempt_id"]) for r in reads] == \
        [("ben", "ann", done.id)]


def test_code_is_not_shared_unless_the_protocol_says_so(server):
    ann, ben = server.participant("ann"), server.participant("ben")
    done = scored(ann)
    ann.post("result", "vanilla", "see code", attempt_id=done.id)
    with pytest.raises(ArenaAPIError) as closed:
        ben.attempt_code(done.id)
    assert closed.value.status == 403 and "share_code_within_arm" in closed.value.message


def test_the_mirror_writes_the_forum_as_files(server, tmp_path):
    bot = server.participant("bot-1", arm="ai", kind="agent")
    mate = server.participant("bot-2", arm="ai", kind="agent")
    mate.post("insight", "Confident labels help / a lot", "**keep** the top 60%")
    folder = tmp_path / "forum"
    mirror = ForumMirror(bot, folder, every=3600)
    assert mirror.refresh() == 1
    (post,) = [p for p in folder.iterdir() if p.name != "INDEX.md"]
    assert "**keep** the top 60%" in post.read_text() and "bot-2" in post.read_text()
    assert "/" not in post.name.removesuffix(".md").split("-", 3)[-1]
    assert mirror.refresh() is None  # not time yet
    mate.post("hypothesis", "second", "more")
    assert mirror.refresh(force=True) == 1  # only the new post is written
    assert "2 posts" in (folder / "INDEX.md").read_text()
