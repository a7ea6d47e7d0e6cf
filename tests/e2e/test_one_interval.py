"""One uncertainty convention through the real door: the attempt page, the leaderboard and the
forum write one score the same way, its 95% interval over test items and seeds of the public
part, rounded as the participant's feedback is; the brief defines PGR and the interval."""

from study.records import AttemptStatus
from study.score_display import PGR_SENTENCE
from tests.e2e.conftest import VANILLA


def test_attempt_leaderboard_and_forum_show_one_interval(server):
    erin = server.participant("erin")
    done = erin.wait(erin.submit(VANILLA, "rt_sentiment").id, poll=0.1)
    assert done.status is AttemptStatus.SCORED, done.error
    public = done.public
    lo, hi = public.pgr_ci95
    assert lo < public.pgr < hi and hi - lo > 0.02  # a real interval, not the seed SE of 0
    assert (round(lo, 2), round(hi, 2)) == (lo, hi)  # rounded like the score itself
    assert public.shown == f"{public.pgr:.2f} [{lo:.2f}, {hi:.2f}]"

    (row,) = [r for r in erin.leaderboard("rt_sentiment") if r.best_attempt_id == done.id]
    assert row.shown == public.shown and row.best_pgr_ci95 == (lo, hi)
    post = erin.post("result", "vanilla", "its score", attempt_id=done.id)
    assert post.attempt_shown == public.shown and post.attempt_public_pgr_ci95 == (lo, hi)
    assert PGR_SENTENCE in erin.brief()
