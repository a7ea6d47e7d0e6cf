"""One door: a "human" and an "agent" submitting the same code through the same SDK make rows
that differ only in participant fields (and what the server draws per attempt: ids, seeds,
times, and the scores those seeds produce)."""

import tempfile

import duckdb

from tests.e2e.conftest import VANILLA

PER_ATTEMPT = {"id", "participant_id", "display_name", "arm", "participant_kind", "seeds",
               "submitted_at", "queued_at", "started_at", "heartbeat_at", "finished_at",
               "idempotency_key", "public_pgr", "public_pgr_se", "public_accuracy", "private_pgr",
               "private_pgr_se", "private_accuracy", "scores_json", "wall_seconds",
               "cpu_seconds", "slot_seconds", "peak_mb"}


def test_human_and_agent_rows_differ_only_in_participant_fields(server):
    human = server.participant("rae", arm="human", kind="human")
    agent = server.participant("claude-1", arm="ai", kind="agent")
    views = [c.wait(c.submit(VANILLA, "rt_sentiment", note="same").id, poll=0.1)
             for c in (human, agent)]
    assert [v.status.value for v in views] == ["scored", "scored"]
    with server.admin() as admin, tempfile.NamedTemporaryFile(suffix=".parquet") as fh:
        fh.write(admin.export("attempts"))
        fh.flush()
        con = duckdb.connect()
        rows = con.execute("SELECT * FROM read_parquet(?) ORDER BY display_name",
                           [fh.name]).fetchall()
        names = [d[0] for d in con.description]
    a, b = (dict(zip(names, r, strict=True)) for r in rows)
    differing = {k for k in names if a[k] != b[k]}
    assert differing <= PER_ATTEMPT, differing - PER_ATTEMPT
    assert {a["participant_kind"], b["participant_kind"]} == {"human", "agent"}
    assert a["code_sha256"] == b["code_sha256"] and a["status"] == b["status"] == "scored"
