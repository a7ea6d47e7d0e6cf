"""The analyst pages' data: the server's exports as analysis frames, cached for a short while
so that changing a filter recomputes the frame and figure but does not refetch."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from analysis.data import StudyData, from_exports, items_from_payload
from analysis.frames import Prices
from analysis.report import build_tables, write_report
from analysis.report import frontier_bands as analysis_bands
from participants.sdk import ArenaAPIError, ArenaClient


@st.cache_data(ttl=30, show_spinner="Loading the study's records…")
def load(url: str, token: str) -> StudyData:
    with ArenaClient(url, token, retries=1, timeout=60) as api:
        study = api.study()
        return from_exports(
            api.export, study_start=pd.Timestamp(study.starts_at),
            study_end=pd.Timestamp(study.ends_at),
            generalization=[g.model_dump() for g in api.generalization()],
            plan=study.analysis, arms=study.arms,
            hill_climb=study.tasks.get("hill_climb", []))


@st.cache_data(ttl=30, show_spinner="Building the tables…")
def tables(url: str, token: str, *, score: str, gpu_hour_price: float):
    """`analysis.report.build_tables` over the cached exports, cached as long: a filter or a
    zoom on the page redraws one figure, it does not rebuild every table."""
    return build_tables(load(url, token), score=score, prices=Prices(gpu_hour=gpu_hour_price))


def frontier_bands(client: ArenaClient, frame: pd.DataFrame, *, x: str, score: str
                   ) -> dict[str, tuple[float, float]]:
    """Per-attempt intervals of the attempts participants' curves hold, from the server's
    per-item results (imported attempts have none and simply get no interval)."""
    part = "public" if score in ("public_pgr", "best_public") else "private"

    def items(attempt_id: str):
        try:
            return items_from_payload(client.item_results(attempt_id), part=part)
        except ArenaAPIError:
            return None

    return analysis_bands(frame, items, x=x, score=score)


def report_html(data: StudyData, *, score: str, gpu_hour_price: float) -> bytes:
    """The same self-contained report as `arena report`, as bytes for a download button."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.html"
        write_report(data, out, score=score, gpu_hour_price=gpu_hour_price)
        return out.read_bytes()
