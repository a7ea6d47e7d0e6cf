"""The forum as files in an agent's workspace: one markdown file per post and an index, so the
agent reads findings with the same file tools it uses for its own notes (the AAR study found
that design best). Refreshed at most once a `every` seconds; a study server that does not
answer leaves the last mirror in place."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import httpx

from participants.sdk import ArenaAPIError, ArenaClient
from study.records import ForumPostView

log = logging.getLogger("w2s_arena.agents")
PAGE = 200


def post_markdown(post: ForumPostView) -> str:
    score = "" if post.attempt_public_pgr is None else \
        f" — linked attempt {post.attempt_id}, public PGR {post.attempt_public_pgr}"
    link = "" if post.attempt_id is None or score else f" — linked attempt {post.attempt_id}"
    return (f"# {post.title}\n\n{post.kind} by {post.display_name} ({post.arm or 'no arm'}), "
            f"{post.created_at:%Y-%m-%d %H:%M} UTC{score}{link}\n\n{post.body}\n")


def file_name(post: ForumPostView) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", post.title.lower()).strip("-")[:40] or "post"
    return f"{post.created_at:%Y%m%d-%H%M%S}-{post.id}-{slug}.md"


class ForumMirror:
    def __init__(self, client: ArenaClient, folder: Path, *, every: float = 60.0) -> None:
        self.client, self.folder, self.every = client, folder, every
        self._last: float | None = None

    def refresh(self, *, force: bool = False) -> int | None:
        """Write new or changed posts; returns how many, or None when it was not time yet or
        the server did not answer."""
        now = time.monotonic()
        if not force and self._last is not None and now - self._last < self.every:
            return None
        self._last = now
        try:
            posts = self._all_posts()
        except (ArenaAPIError, httpx.HTTPError) as exc:
            log.warning("forum mirror not refreshed: %s", exc)
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        written = sum(_write_if_changed(self.folder / file_name(p), post_markdown(p))
                      for p in posts)
        index = "\n".join(f"- {p.created_at:%Y-%m-%d %H:%M} [{p.kind}] {p.title} — "
                          f"{p.display_name} ({file_name(p)})" for p in posts)
        _write_if_changed(self.folder / "INDEX.md",
                          f"# Forum ({len(posts)} posts, newest first)\n\n{index}\n")
        return written

    def _all_posts(self) -> list[ForumPostView]:
        posts: list[ForumPostView] = []
        while True:
            page = self.client.forum(limit=PAGE, offset=len(posts))
            posts += page
            if len(page) < PAGE:
                return posts


def _write_if_changed(path: Path, text: str) -> bool:
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return True
