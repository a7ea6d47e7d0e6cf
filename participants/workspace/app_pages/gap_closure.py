"""Analysts: does one arm reach a higher PGR than another by time t — the pre-registered
comparison first, then the curves on any axis, zoomed after they are built, and the tables."""

import pandas as pd
import streamlit as st

from analysis.curves import ENDPOINTS
from analysis.figures import frontier_figure, generalization_figure, participant_figure
from analysis.frames import AXES
from analysis.report import references
from analysis.tables import thresholds_wide
from participants.workspace import state, study_data

st.title("Gap closure")
if not state.is_staff():
    st.warning("This view is for analysts and admins.")
    st.stop()

data = study_data.load(state.server_url(), st.session_state[state.TOKEN])
with st.sidebar:
    axis = st.selectbox("x-axis", list(AXES), format_func=AXES.get, key="gap_axis")
    score = st.radio("endpoint", ["private_pgr", "public_pgr", "oracle_private"],
                     key="gap_score", format_func=lambda s: {
                         "private_pgr": "private at best public (honest)",
                         "public_pgr": "best public", "oracle_private": "oracle (private)"}[s])
    price = st.number_input("GPU $/hour", min_value=0.0, value=0.0, step=0.5, key="gap_price")
frame, tables, ctx, notes = study_data.tables(state.server_url(), st.session_state[state.TOKEN],
                                              score=score, gpu_hour_price=price)
st.info(tables["primary"]["summary"].iloc[0])
if frame.empty:
    st.info("No finished attempts yet.")
    st.stop()
for note in notes:
    st.caption(f"⚠ {note}")
left, middle, right = st.columns(3)
arms = left.multiselect("arms", sorted(frame["arm"].dropna().unique()),
                        default=sorted(frame["arm"].dropna().unique()), key="gap_arms")
tasks = middle.multiselect("tasks", sorted(frame["task"].unique()),
                           default=sorted(frame["task"].unique()), key="gap_tasks")
people = right.multiselect("participants (all if empty)",
                           sorted(frame["display_name"].unique()), key="gap_people")
chosen = frame[frame["arm"].isin(arms) & frame["task"].isin(tasks)]
roster = ctx.roster[ctx.roster["arm"].isin(arms)]
if people:
    chosen = chosen[chosen["display_name"].isin(people)]
    roster = roster[roster["display_name"].isin(people)]
seen = chosen[axis].max()
until = ctx.as_of_hours if axis == "calendar_hours" else 0.0 if pd.isna(seen) else float(seen)
high = max(until, 1.0)
# The range only zooms the finished figure: filtering attempts first would redraw history.
zoom = st.slider("range", min_value=0.0, max_value=high, value=(0.0, high), key="gap_range")

bands = None
if st.toggle("per-attempt 95% intervals (held attempts)", key="gap_bands"):
    bands = study_data.frontier_bands(state.client(), chosen, x=axis, score=score)
st.plotly_chart(frontier_figure(chosen, x=axis, endpoint=score, until=until, roster=roster,
                                references=references(frame, endpoint=score,
                                                      baselines=ctx.plan.reference_baselines),
                                bands=bands, zoom=zoom),
                width="stretch", key="gap_frontier")
st.caption(f"Thick: each arm's median participant ({ENDPOINTS[ctx.endpoint]}), shaded: 95% "
           "band over participants; dashed: best in arm; thin: participants; crosses: "
           "flagged attempts. Hover a point for the attempt and its method.")

tab1, tab2, tab3, tab4, tab5 = st.tabs(["time to threshold", "participants", "activity",
                                        "public vs private", "generalization"])
thresholds = tables["time_to_threshold"]
tab1.dataframe(pd.merge(thresholds_wide(thresholds[thresholds["axis"] == axis]),
                        tables["area_under_median"], on="arm", how="outer"), hide_index=True)
km = tables["time_to_threshold_km"]
tab1.dataframe(km[km["axis"] == axis], hide_index=True)  # Kaplan–Meier on the chosen axis
if "sequential" in tables:  # the plan's interim looks, with alpha spending
    tab1.dataframe(tables["sequential"], hide_index=True)
tab2.dataframe(tables["participants"], hide_index=True)
tab2.dataframe(tables["matched_comparison"], hide_index=True)
names = dict(zip(roster["participant_id"], roster["display_name"], strict=True))
who = tab2.selectbox("trajectory of", list(names), format_func=names.get, key="gap_who")
if who:
    tab2.plotly_chart(participant_figure(frame, who, x=axis, endpoint=score), key="gap_one")
tab3.dataframe(tables["activity"], hide_index=True)
tab4.dataframe(tables["public_private_gap"], hide_index=True)
if data.generalization.empty:
    tab5.info("No held-out re-runs yet: they come with `arena finalize`.")
else:
    tab5.plotly_chart(generalization_figure(data.generalization), key="gap_general")

st.download_button("Download the report (HTML)", key="gap_report",
                   data=study_data.report_html(data, score=score, gpu_hour_price=price),
                   file_name="w2s-arena-report.html", mime="text/html")
