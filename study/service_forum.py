"""The forum side of the service: reading in pages, posting once per idempotency key, result
posts backed by a scored attempt, and arm-mates reading the code behind a linked attempt when
the protocol allows it (every read logged). Mixed into ArenaService."""

from __future__ import annotations

import math
from typing import Any

from study.agent_limits import check_daily_rows
from study.errors import ForbiddenError, InvalidError, NotFoundError
from study.feedback import coarse_public
from study.records import AttemptStatus, CodeSnapshotView, ForumPostSpec, ForumPostView, Role
from study.score_display import part_interval, shown
from study.store.queries import new_id

POST_COLUMNS = ("id, participant_id, arm, kind, title, body, attempt_id, created_at, "
                "idempotency_key")


class ForumSide:
    def forum(self, principal, query: str | None = None, *, limit: int | None = None,
              offset: int = 0, kind: str | None = None, author: str | None = None
              ) -> list[ForumPostView]:
        """Newest first. `author` is a display name or a participant id."""
        staff = principal.role in (Role.ANALYST, Role.ADMIN)
        arm = None if staff or self.protocol.forum.cross_arm_visibility else principal.arm
        return self._post_views(principal, self.store.list_posts(
            arm=arm, query=query, limit=limit, offset=offset, kind=kind, author=author))

    def _post_views(self, principal, rows: list[dict[str, Any]]) -> list[ForumPostView]:
        """Staff see linked scores whole; participants see them as their own feedback is —
        coarse in items, rounded, and not at all when the Ladder withheld the score."""
        staff = principal.role in (Role.ANALYST, Role.ADMIN)
        digits = None if staff else self.protocol.feedback.round_to
        views = []
        for row in rows:
            r = {k: v for k, v in row.items() if k != "attempt_released"}
            scores = r.get("attempt_scores_json")
            if not staff:
                part = coarse_public(scores, self.protocol.feedback.public_step_items) \
                    if row.get("attempt_released", True) else None
                scores = {"public": part} if part else None
                r["attempt_public_pgr"] = part["pgr"] if part else None
            pgr = _round(r["attempt_public_pgr"], digits)
            ci95 = part_interval(scores, "public", digits)
            views.append(ForumPostView(**{
                **r, "attempt_public_pgr": pgr, "attempt_public_pgr_ci95": ci95,
                "attempt_shown": shown(pgr, ci95, digits) if r.get("attempt_id") else None}))
        return views

    def post(self, principal, spec: ForumPostSpec) -> ForumPostView:
        self.require(principal, Role.PARTICIPANT)
        if spec.attempt_id:
            attempt = self._own_attempt(principal, spec.attempt_id)
            if spec.kind == "result" and attempt["status"] != AttemptStatus.SCORED.value:
                raise InvalidError(f"a result post must link a scored attempt; "
                                   f"{spec.attempt_id} is {attempt['status']}")
        elif spec.kind == "result":
            raise InvalidError("a result post must link a scored attempt of yours "
                               "(attempt_id); post a hypothesis or an insight otherwise")
        with self.store.db.transaction() as cur:
            found = id_by_key(cur, "forum_posts", principal.id, spec.idempotency_key)
            if found is None:
                check_daily_rows(cur, table="forum_posts", participant_id=principal.id,
                                 now=self.clock(), cap=self.protocol.limits.forum_posts_per_day,
                                 what="forum posts", time_column="created_at")
                found = new_id("post")
                cur.execute(f"INSERT INTO forum_posts ({POST_COLUMNS}) VALUES "
                            "(?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [found, principal.id, principal.arm, spec.kind, spec.title,
                             spec.body, spec.attempt_id, self.clock(), spec.idempotency_key])
                self.store.append_event(cur, "forum_post", actor=principal.id,
                                        attempt_id=spec.attempt_id, post=found, kind=spec.kind)
        (view,) = self._post_views(principal, self.store.list_posts(arm=None, query=None,
                                                                     post_id=found))
        return view

    def attempt_code(self, principal, attempt_id: str) -> CodeSnapshotView:
        """The source of an attempt linked in a forum post, for an arm-mate of its author when
        the protocol shares code within arms. Each read is logged: who read whose code, when."""
        staff = principal.role in (Role.ANALYST, Role.ADMIN)
        row = self.store.get_attempt(attempt_id)
        author = self.store.get_participant(row["participant_id"]) if row else None
        linked = row is not None and self.store.db.rows(
            "SELECT 1 FROM forum_posts WHERE attempt_id = ? LIMIT 1", [attempt_id])
        visible = staff or (linked and author is not None and author.arm == principal.arm)
        if row is None or not visible:
            raise NotFoundError(f"no attempt {attempt_id} linked in a post of your arm")
        if not (staff or self.protocol.forum.share_code_within_arm
                or author.id == principal.id):
            raise ForbiddenError("this study does not share code between participants "
                                 "(protocol: forum.share_code_within_arm)")
        with self.store.db.transaction() as cur:
            now = self.clock()
            cur.execute("INSERT INTO code_reads VALUES (?, ?, ?, ?)",
                        [principal.id, attempt_id, author.id, now])
            self.store.append_event(cur, "code_read", actor=principal.id,
                                    attempt_id=attempt_id, author=author.id)
        return CodeSnapshotView(attempt_id=attempt_id, author_id=author.id,
                                author=author.display_name, task=row["task"],
                                code_sha256=row["code_sha256"], source=row["source"])

    def code_reads(self, principal) -> list[dict[str, Any]]:
        self.require(principal, Role.ANALYST, Role.ADMIN)
        return self.store.db.rows(
            "SELECT c.reader_id, r.display_name AS reader, c.author_id, "
            "a.display_name AS author, c.attempt_id, c.read_at FROM code_reads c "
            "JOIN participants r ON r.id = c.reader_id "
            "JOIN participants a ON a.id = c.author_id ORDER BY c.read_at")


def id_by_key(cur, table: str, participant_id: str, key: str | None) -> str | None:
    """The row of `table` (forum_posts, experiments) this participant made with this
    idempotency key, if any: a re-sent request gets it back instead of a second one."""
    if key is None:
        return None
    hit = cur.execute(f"SELECT id FROM {table} WHERE participant_id = ? AND "
                      "idempotency_key = ?", [participant_id, key]).fetchone()
    return hit[0] if hit else None


def _round(value: float | None, digits: int | None) -> float | None:
    if value is None or digits is None or not math.isfinite(value):
        return value if digits is None else None
    return round(float(value), digits)
