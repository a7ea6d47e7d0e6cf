"""The README and docs/ send a newcomer only to files in this repository."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# `path/with/a/slash.ext` in backticks, and markdown links [text](target).
NAMED = re.compile(r"`((?:[\w.-]+/)+[\w.-]+\.(?:md|py|toml|sh|sql|yml|yaml))`")
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_file_a_doc_names_is_in_the_repository(doc):
    text = doc.read_text()
    named = NAMED.findall(text) + [t.split("#")[0] for t in LINK.findall(text)
                                   if not re.match(r"[a-z]+:", t) and not t.startswith("#")]
    # A backticked path outside the repository's own folders (`forum/INDEX.md` in an agent's
    # workspace) names a file made at run time, not one to read here.
    tops = {p.name for p in REPO.iterdir()} | {p.name for p in doc.parent.iterdir()}
    for target in filter(None, named):
        if target.split("/")[0] not in tops | {".."}:
            continue
        inside = [(base / target).resolve() for base in (REPO, doc.parent)]
        assert any(p.is_relative_to(REPO) and p.exists() for p in inside), \
            f"{doc.name} names {target}, which is not in the repository"
    assert "DESIGN.md" not in text and "../shared" not in text


def test_the_readme_links_the_architecture_page():
    assert "docs/architecture.md" in (REPO / "README.md").read_text()
    assert (REPO / "docs" / "architecture.md").exists()
