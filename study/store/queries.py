"""Every SQL statement the service runs, as small named functions over one Database."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from study.audit import GENESIS, chain_key, event_hash, load_key
from study.records import ACTIVE, AttemptStatus, ParticipantRecord, ParticipantSpec
from study.store.db import Database, utcnow

# Statuses that count against a participant's daily quota: a cancelled attempt, or one lost to
# an infrastructure fault (charged = false), gives its quota back.
CHARGED_STATUSES = tuple(s.value for s in AttemptStatus if s is not AttemptStatus.CANCELLED)
ACTIVE_STATUSES = tuple(s.value for s in ACTIVE)
# What an attempt costs its author's daily compute: GPU-seconds (wall × GPUs held) where it ran
# on GPUs, else slot-seconds (wall × the one slot held: a method that sleeps still holds its
# slot), else CPU-seconds (rows written before slot time was kept).
CHARGED_COMPUTE = "coalesce(gpu_seconds, slot_seconds, cpu_seconds, 0)"
# While an attempt is waiting or running it holds its worst case (seeds × per-seed limit),
# reserved at submit; the finished attempt settles at what it really used.
HELD_COMPUTE = (f"CASE WHEN status IN ('submitted', 'queued', 'running') "
                f"THEN coalesce(reserved_seconds, 0) ELSE {CHARGED_COMPUTE} END")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join("?" * len(values)) + ")"


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.on_move: Callable[[str], None] | None = None  # set by the server (long-polls)
        self.on_queue_move: Callable[[], None] | None = None  # an attempt left the queue
        # The chain's key lives in a file apart from the DuckDB file (study.audit.key_path).
        self.chain_key_file = load_key(Path(db.path).parent)
        self.chain_scheme = self._scheme()

    def _scheme(self) -> str:
        try:
            row = self.db.one("SELECT scheme FROM chain_meta WHERE id = 1")
        except Exception:  # a file from before migration 0007, opened read-only
            return "sha256"
        return row["scheme"] if row else "sha256"

    def set_chain_scheme(self, scheme: str) -> None:
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM chain_meta")
            cur.execute("INSERT INTO chain_meta VALUES (1, ?)", [scheme])
        self.chain_scheme = scheme

    @property
    def chain_key(self) -> bytes | None:
        """The key events are chained with; raises if the study is keyed and the key is gone."""
        return chain_key(self.chain_scheme, self.chain_key_file)

    # study -----------------------------------------------------------------------------------
    def get_study(self) -> dict[str, Any] | None:
        return self.db.one("SELECT * FROM study WHERE id = 1")

    def create_study(self, *, name: str, protocol_json: str, protocol_hash: str,
                     starts_at: dt.datetime, ends_at: dt.datetime) -> None:
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO study (id, name, protocol_json, protocol_hash, created_at, "
                        "starts_at, ends_at) VALUES (1, ?, ?, ?, ?, ?, ?)",
                        [name, protocol_json, protocol_hash, utcnow(), starts_at, ends_at])

    def replace_protocol(self, *, protocol_json: str, protocol_hash: str, ends_at: dt.datetime,
                         cur) -> None:
        cur.execute("UPDATE study SET protocol_json = ?, protocol_hash = ?, ends_at = ? "
                    "WHERE id = 1", [protocol_json, protocol_hash, ends_at])

    # events ----------------------------------------------------------------------------------
    def append_event(self, cur, event: str, *, actor: str | None = None,
                     attempt_id: str | None = None, **payload: Any) -> None:
        """Append to the hash chain; runs inside the caller's write transaction (the lock)."""
        last = cur.execute("SELECT hash FROM events ORDER BY id DESC LIMIT 1").fetchone()
        prev = last[0] if last else GENESIS
        event_id = cur.execute("SELECT nextval('events_id')").fetchone()[0]
        at, body = utcnow(), json.dumps(payload, default=str, sort_keys=True)
        digest = event_hash(prev, event_id=event_id, occurred_at=at, kind=event, actor=actor,
                            attempt_id=attempt_id, payload=body, key=self.chain_key)
        cur.execute("INSERT INTO events (id, occurred_at, kind, actor, attempt_id, payload, "
                    "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [event_id, at, event, actor, attempt_id, body, prev, digest])

    def append_events_bulk(self, cur, events: list[tuple[str, str | None, str | None, dict]]
                           ) -> None:
        """Many (event, actor, attempt_id, payload) at once, chained exactly as append_event
        chains them one by one — for imports and for generating large test studies."""
        import pandas as pd

        # fetchall, not fetchone: DuckDB's register() below needs every result consumed.
        last = cur.execute("SELECT hash FROM events ORDER BY id DESC LIMIT 1").fetchall()
        prev = last[0][0] if last else GENESIS
        first = cur.execute("SELECT nextval('events_id')").fetchall()[0][0]
        cur.execute(f"SELECT setval('events_id', {first + len(events) - 1})").fetchall()
        at, key = utcnow(), self.chain_key
        rows = []
        for offset, (event, actor, attempt_id, payload) in enumerate(events):
            body = json.dumps(payload, default=str, sort_keys=True)
            digest = event_hash(prev, event_id=first + offset, occurred_at=at, kind=event,
                                actor=actor, attempt_id=attempt_id, payload=body, key=key)
            rows.append((first + offset, at, event, actor, attempt_id, body, prev, digest))
            prev = digest
        frame = pd.DataFrame(rows, columns=["id", "occurred_at", "kind", "actor", "attempt_id",
                                            "payload", "prev_hash", "hash"])
        cur.register("new_events", frame)
        cur.execute("INSERT INTO events BY NAME SELECT * FROM new_events").fetchall()
        cur.unregister("new_events")

    def insert_attempts_bulk(self, cur, frame) -> None:
        """A DataFrame of attempt rows (columns named as in the table) in one statement."""
        cur.register("new_attempts", frame)
        cur.execute("INSERT INTO attempts BY NAME SELECT * FROM new_attempts").fetchall()
        cur.unregister("new_attempts")

    def events(self) -> list[dict[str, Any]]:
        return self.db.rows("SELECT * FROM events ORDER BY id")

    # participants and tokens -----------------------------------------------------------------
    def add_participant(self, spec: ParticipantSpec, *, actor: str | None) -> ParticipantRecord:
        record = ParticipantRecord(id=new_id("p"), display_name=spec.display_name,
                                   role=spec.role, arm=spec.arm, kind=spec.kind,
                                   created_at=utcnow())
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO participants VALUES (?, ?, ?, ?, ?, ?)",
                        [record.id, record.display_name, record.role.value, record.arm,
                         record.kind.value, record.created_at])
            self.append_event(cur, "participant_added", actor=actor, participant=record.id,
                              role=record.role.value, arm=record.arm, kind=record.kind.value)
        return record

    def get_participant(self, participant_id: str) -> ParticipantRecord | None:
        row = self.db.one("SELECT * FROM participants WHERE id = ?", [participant_id])
        return ParticipantRecord(**row) if row else None

    def list_participants(self) -> list[ParticipantRecord]:
        return [ParticipantRecord(**r) for r in
                self.db.rows("SELECT * FROM participants ORDER BY created_at")]

    def add_token(self, participant_id: str, token_sha256: str, *,
                  expires_at: dt.datetime | None, actor: str | None) -> str:
        token_id = new_id("tok")
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, ?, NULL)",
                        [token_id, participant_id, token_sha256, utcnow(), expires_at])
            self.append_event(cur, "token_issued", actor=actor, participant=participant_id,
                              token_id=token_id, expires_at=expires_at)
        return token_id

    def revoke_token(self, token_id: str, *, actor: str | None) -> bool:
        with self.db.transaction() as cur:
            hit = cur.execute("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS "
                              "NULL RETURNING id", [utcnow(), token_id]).fetchall()
            if hit:
                self.append_event(cur, "token_revoked", actor=actor, token_id=token_id)
        return bool(hit)

    def token_owner(self, token_sha256: str) -> dict[str, Any] | None:
        return self.db.one(
            "SELECT t.id AS token_id, t.expires_at, t.revoked_at, p.* FROM tokens t "
            "JOIN participants p ON p.id = t.participant_id WHERE t.token_sha256 = ?",
            [token_sha256])

    # attempts --------------------------------------------------------------------------------
    def insert_attempt(self, cur, row: dict[str, Any]) -> None:
        names = ", ".join(row)
        cur.execute(f"INSERT INTO attempts ({names}) VALUES ({', '.join('?' * len(row))})",
                    list(row.values()))

    def get_attempt(self, attempt_id: str) -> dict[str, Any] | None:
        return self.db.one("SELECT * FROM attempts WHERE id = ?", [attempt_id])

    def find_idempotent(self, cur, participant_id: str, key: str) -> str | None:
        row = cur.execute("SELECT id FROM attempts WHERE participant_id = ? AND "
                          "idempotency_key = ?", [participant_id, key]).fetchone()
        return row[0] if row else None

    def list_attempts(self, *, participant_id: str | None = None, task: str | None = None,
                      limit: int = 200) -> list[dict[str, Any]]:
        where, params = [], []
        if participant_id:
            where.append("participant_id = ?")
            params.append(participant_id)
        if task:
            where.append("task = ?")
            params.append(task)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return self.db.rows(f"SELECT * FROM attempts {clause} ORDER BY submitted_at DESC "
                            f"LIMIT ?", [*params, limit])

    def move(self, cur, attempt_id: str, old: AttemptStatus, new: AttemptStatus,
             **fields: Any) -> bool:
        """Compare-and-set: change status only if it is still `old`; True if it moved. Once
        the change commits, anyone long-polling the attempt is woken (`on_move`)."""
        sets = ["status = ?", *(f"{k} = ?" for k in fields)]
        hit = cur.execute(f"UPDATE attempts SET {', '.join(sets)} WHERE id = ? AND status = ? "
                          "RETURNING id",
                          [new.value, *fields.values(), attempt_id, old.value]).fetchall()
        if hit and self.on_move is not None:
            on_move = self.on_move
            self.db.after_commit(lambda: on_move(attempt_id))
        if hit and old is AttemptStatus.QUEUED and self.on_queue_move is not None:
            self.db.after_commit(self.on_queue_move)
        return bool(hit)

    def stale_running(self, before: dt.datetime) -> list[str]:
        """Running attempts whose heartbeat stopped before `before`: their worker lost them."""
        return [r["id"] for r in self.db.rows(
            "SELECT id FROM attempts WHERE status = 'running' AND "
            "coalesce(heartbeat_at, started_at) < ?", [before])]

    def oldest_queued(self) -> dt.datetime | None:
        return self.db.scalar("SELECT min(queued_at) FROM attempts WHERE status = 'queued'")

    def queue_position(self, queued_at: dt.datetime) -> int:
        """1 + the queued attempts older than one queued at `queued_at` (a status poll's hot
        path: one count, no join)."""
        ahead = self.db.scalar("SELECT count(*) FROM attempts WHERE status = 'queued' AND "
                               "queued_at < ?", [queued_at])
        return int(ahead) + 1

    def queue_positions(self) -> dict[str, int]:
        """Every queued attempt's position, as queue_position counts it, in one query."""
        return {r["id"]: int(r["position"]) for r in self.db.rows(
            "SELECT id, rank() OVER (ORDER BY queued_at) AS position FROM attempts "
            "WHERE status = 'queued' AND queued_at IS NOT NULL")}

    def next_queued(self, cur, *, caps: dict[str, int], since: dt.datetime) -> dict | None:
        """Fair share: among queued attempts whose author is under their concurrency cap, the
        author with the least compute in the last day goes first; ties by queue order."""
        rows = cur.execute(
            f"WITH recent AS (SELECT participant_id, sum({CHARGED_COMPUTE}) AS compute "
            "  FROM attempts WHERE finished_at >= ? AND charged GROUP BY participant_id), "
            "running AS (SELECT participant_id, count(*) AS n FROM attempts "
            "  WHERE status = 'running' GROUP BY participant_id) "
            "SELECT a.id, a.participant_id, coalesce(r.n, 0) AS running "
            "FROM attempts a LEFT JOIN recent c USING (participant_id) "
            "LEFT JOIN running r USING (participant_id) WHERE a.status = 'queued' "
            "ORDER BY coalesce(c.compute, 0), a.queued_at, a.id", [since]).fetchall()
        for attempt_id, participant_id, running in rows:
            if running < caps.get(participant_id, 1):
                return {"id": attempt_id, "participant_id": participant_id}
        return None

    def usage(self, participant_id: str, since: dt.datetime) -> dict[str, Any]:
        row = self.db.one(
            f"SELECT count(*) FILTER (WHERE status IN {_in(CHARGED_STATUSES)} AND charged) AS n,"
            f" min(submitted_at) FILTER (WHERE status IN {_in(CHARGED_STATUSES)} AND charged) "
            f"   AS oldest,"
            f" coalesce(sum({HELD_COMPUTE}) FILTER (WHERE charged), 0) AS compute,"
            f" coalesce(sum(reserved_seconds) FILTER (WHERE charged AND status IN "
            f"   {_in(ACTIVE_STATUSES)}), 0) AS reserved,"
            f" count(*) FILTER (WHERE status IN {_in(ACTIVE_STATUSES)}) AS active "
            f"FROM attempts WHERE participant_id = ? AND submitted_at >= ?",
            [*CHARGED_STATUSES, *CHARGED_STATUSES, *ACTIVE_STATUSES, *ACTIVE_STATUSES,
             participant_id, since])
        assert row is not None  # an aggregate always returns one row
        return row

    def attempts_with_status(self, status: AttemptStatus) -> list[dict[str, Any]]:
        return self.db.rows("SELECT * FROM attempts WHERE status = ?", [status.value])

    def insert_seed_results(self, cur, attempt_id: str, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            cur.execute("INSERT INTO seed_results (attempt_id, seed, status, accuracy, "
                        "wall_seconds, cpu_seconds, peak_mb, error, probs, metrics, "
                        "gpu_seconds, peak_gpu_mb, log_tail) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [attempt_id, r["seed"], r["status"], r.get("accuracy"),
                         r.get("wall_seconds"), r.get("cpu_seconds"), r.get("peak_mb"),
                         r.get("error"), r.get("probs"), json.dumps(r.get("metrics") or []),
                         r.get("gpu_seconds"), r.get("peak_gpu_mb"), r.get("log_tail")])

    def seed_results(self, attempt_id: str) -> list[dict[str, Any]]:
        return self.db.rows("SELECT * FROM seed_results WHERE attempt_id = ? ORDER BY seed",
                            [attempt_id])

    def seed_outcomes(self, attempt_id: str) -> list[dict[str, Any]]:
        """What an attempt page shows of each seed: seed_results without the predictions."""
        return self.db.rows("SELECT seed, status, wall_seconds, error, log_tail, metrics "
                            "FROM seed_results WHERE attempt_id = ? ORDER BY seed", [attempt_id])

    def attempt_counts(self, task: str) -> dict[str, int]:
        """Attempts per participant on a task, whatever became of them."""
        return {r["participant_id"]: int(r["n"]) for r in self.db.rows(
            "SELECT participant_id, count(*) AS n FROM attempts WHERE task = ? GROUP BY 1",
            [task])}

    def best_public(self, task: str) -> list[dict[str, Any]]:
        return self.db.rows(
            "SELECT a.participant_id, p.display_name, p.arm, p.kind, a.id AS attempt_id, "
            "a.public_pgr, a.scores_json, a.finished_at, "
            "count(*) OVER (PARTITION BY a.participant_id) AS n "
            "FROM attempts a JOIN participants p ON p.id = a.participant_id "
            "WHERE a.task = ? AND a.status = 'scored' AND a.public_pgr IS NOT NULL "
            "AND coalesce(a.released, TRUE) AND NOT coalesce(a.disqualified, FALSE) "
            "QUALIFY row_number() OVER (PARTITION BY a.participant_id "
            "  ORDER BY a.public_pgr DESC, a.finished_at) = 1 "
            "ORDER BY a.public_pgr DESC, a.finished_at", [task])

    def released_public(self, task: str) -> list[dict[str, Any]]:
        """Every released, scored, not disqualified attempt on `task` (study.feedback ranks
        them by the coarse score participants see)."""
        return self.db.rows(
            "SELECT a.participant_id, p.display_name, p.arm, p.kind, a.id AS attempt_id, "
            "a.public_pgr, a.scores_json, a.finished_at "
            "FROM attempts a JOIN participants p ON p.id = a.participant_id "
            "WHERE a.task = ? AND a.status = 'scored' AND a.public_pgr IS NOT NULL "
            "AND coalesce(a.released, TRUE) AND NOT coalesce(a.disqualified, FALSE)", [task])

    # sessions (clock in / out) ---------------------------------------------------------------
    def open_session(self, participant_id: str) -> dict[str, Any] | None:
        return self.db.one("SELECT * FROM sessions WHERE participant_id = ? AND ended_at IS "
                           "NULL", [participant_id])

    def active_seconds(self, participant_id: str, now: dt.datetime) -> float:
        value = self.db.scalar(
            "SELECT coalesce(sum(epoch(coalesce(ended_at, ?)) - epoch(started_at)), 0) "
            "FROM sessions WHERE participant_id = ?", [now, participant_id])
        return float(value)

    # forum -----------------------------------------------------------------------------------
    def list_posts(self, *, arm: str | None, query: str | None, limit: int | None = 200,
                   offset: int = 0, kind: str | None = None, author: str | None = None,
                   post_id: str | None = None):
        """Newest first; `author` matches a display name or a participant id."""
        where, params = [], []
        for clause, value in (("f.arm = ?", arm), ("f.kind = ?", kind), ("f.id = ?", post_id)):
            if value is not None:
                where.append(clause)
                params.append(value)
        if author is not None:
            where.append("(p.display_name = ? OR p.id = ?)")
            params += [author, author]
        if query:
            where.append("(f.title ILIKE ? OR f.body ILIKE ?)")
            params += [f"%{query}%", f"%{query}%"]
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return self.db.rows(
            "SELECT f.*, p.display_name, a.public_pgr AS attempt_public_pgr, "
            "coalesce(a.released, TRUE) AS attempt_released, "
            "a.scores_json AS attempt_scores_json FROM forum_posts f "
            "JOIN participants p ON p.id = f.participant_id "
            f"LEFT JOIN attempts a ON a.id = f.attempt_id {clause} "
            "ORDER BY f.created_at DESC, f.id LIMIT ? OFFSET ?",
            [*params, limit if limit is not None else 2**62, offset])
