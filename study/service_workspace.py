"""The workspace's side of the service: browser sessions and editor drafts. Mixed into
ArenaService.

A session lets a reload of the workspace stay signed in without the participant token ever
being written into the page: the workspace trades the token for a session secret once, keeps
that secret in a cookie, and the secret works as a bearer credential until it expires, is
ended (sign out), or the token that opened it is revoked. Drafts keep unsaved editor text on
the server, per participant, so a reload loses nothing and analysts can read how each arm's
methods took shape between attempts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from study.errors import AuthError, InvalidError, PayloadTooLargeError
from study.records import DraftSpec, DraftView, ParticipantRecord, SeedRunView, SessionView
from study.store.queries import new_id

SESSION_PREFIX = "w2sw_"
SESSION_HOURS = 8 * 24  # a 7-day window plus a day; a shorter token ends it sooner
# A draft saved within this many seconds of the last one replaces it: the history keeps one
# version per half minute of typing, and a script cannot fill the disk with drafts.
DRAFT_COALESCE_S = 30.0


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class WorkspaceSide:
    # ---------------------------------------------------------------------------- sessions
    def open_web_session(self, token: str | None) -> SessionView:
        """Trade a participant token (not a session) for a session secret, shown once."""
        if token and token.startswith(SESSION_PREFIX):
            raise AuthError("sign in with your participant token, not a session")
        principal = self.authenticate(token)
        row = self.store.token_owner(_sha(token or ""))
        now = self.clock()
        expires = now + dt.timedelta(hours=SESSION_HOURS)
        if row["expires_at"] is not None:
            expires = min(expires, row["expires_at"])
        secret = SESSION_PREFIX + secrets.token_urlsafe(32)
        with self.store.db.transaction() as cur:
            cur.execute("INSERT INTO web_sessions VALUES (?, ?, ?, ?, ?, ?, NULL)",
                        [new_id("ws"), principal.id, row["token_id"], _sha(secret), now,
                         expires])
            self.store.append_event(cur, "web_session_opened", actor=principal.id)
        return SessionView(session=secret, expires_at=expires, participant=principal)

    def session_owner(self, secret: str) -> ParticipantRecord:
        return self.session_principal(secret)[0]

    def session_principal(self, secret: str) -> tuple[ParticipantRecord, dt.datetime]:
        """Who a session belongs to, and when it ends; refused if ended, revoked or expired."""
        row = self.store.db.one(
            "SELECT s.expires_at, s.ended_at, t.revoked_at, t.expires_at AS token_expires, p.* "
            "FROM web_sessions s JOIN tokens t ON t.id = s.token_id "
            "JOIN participants p ON p.id = s.participant_id WHERE s.secret_sha256 = ?",
            [_sha(secret)])
        now = self.clock()
        if row is None or row["ended_at"] is not None:
            raise AuthError("this workspace session ended; sign in again")
        if row["revoked_at"] is not None:
            raise AuthError("the token behind this session was revoked; ask the study admin "
                            "for a new one")
        ends = min(row["expires_at"], row["token_expires"] or row["expires_at"])
        if ends <= now:
            raise AuthError(f"this workspace session expired at {ends:%Y-%m-%d %H:%M} UTC; "
                            "sign in again")
        return ParticipantRecord(**{k: row[k] for k in ("id", "display_name", "role", "arm",
                                                        "kind", "created_at")}), ends

    def end_web_session(self, secret: str | None) -> None:
        """Sign out: the secret stops working at once (ending twice is not an error)."""
        if not secret or not secret.startswith(SESSION_PREFIX):
            raise InvalidError("only a workspace session can be ended; tokens are revoked "
                               "by the admin")
        principal = self.session_owner(secret)
        with self.store.db.transaction() as cur:
            cur.execute("UPDATE web_sessions SET ended_at = ? WHERE secret_sha256 = ? AND "
                        "ended_at IS NULL", [self.clock(), _sha(secret)])
            self.store.append_event(cur, "web_session_ended", actor=principal.id)
        self.credentials.forget_all()  # committed: the remembered session must not pass again

    # ------------------------------------------------------------------------------- drafts
    def save_draft(self, principal: ParticipantRecord, spec: DraftSpec) -> DraftView:
        limit = self.protocol.limits.max_source_bytes
        try:
            size = len(spec.source.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidError("the draft is not valid UTF-8 text") from None
        if size > limit:
            raise PayloadTooLargeError(f"the draft is {size} bytes; methods here are at most "
                                       f"{limit}")
        now, sha = self.clock(), _sha(spec.source)
        with self.store.db.transaction() as cur:
            last = cur.execute("SELECT id, saved_at, source_sha256, task, origin FROM drafts "
                               "WHERE participant_id = ? ORDER BY saved_at DESC LIMIT 1",
                               [principal.id]).fetchone()
            if last and (last[2], last[3], last[4]) == (sha, spec.task, spec.origin):
                return DraftView(source=spec.source, task=spec.task, origin=spec.origin,
                                 saved_at=last[1])
            if last and (now - last[1]).total_seconds() < DRAFT_COALESCE_S:
                cur.execute("UPDATE drafts SET saved_at = ?, task = ?, origin = ?, "
                            "source_sha256 = ?, source = ? WHERE id = ?",
                            [now, spec.task, spec.origin, sha, spec.source, last[0]])
            else:
                cur.execute("INSERT INTO drafts VALUES (?, ?, ?, ?, ?, ?, ?)",
                            [new_id("drf"), principal.id, now, spec.task, spec.origin, sha,
                             spec.source])
        return DraftView(source=spec.source, task=spec.task, origin=spec.origin, saved_at=now)

    def latest_draft(self, principal: ParticipantRecord) -> DraftView | None:
        row = self.store.db.one("SELECT source, task, origin, saved_at FROM drafts WHERE "
                                "participant_id = ? ORDER BY saved_at DESC LIMIT 1",
                                [principal.id])
        return DraftView(**row) if row else None


def seed_runs_from_results(seeds: list[int], results: list[dict]) -> list[SeedRunView]:
    """A finished attempt's seeds in the server's order; a seed after a broken one never ran."""
    by_seed = {r["seed"]: r for r in results}
    runs = []
    for seed in seeds:
        r = by_seed.get(seed)
        runs.append(SeedRunView(seed=seed, state="not run") if r is None else SeedRunView(
            seed=seed, state=r["status"], wall_seconds=r["wall_seconds"], error=r["error"],
            log_tail=r.get("log_tail") or ""))
    return runs
