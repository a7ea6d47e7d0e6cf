"""Analysts: how fast each arm closed the gap — on any time axis, filtered, with the tables."""

import pandas as pd
import streamlit as st

from analysis.curves import arm_frontier
from analysis.figures import frontier_figure, generalization_figure
from analysis.frames import AXES, attempts_frame
from analysis.stats import activity, area_under_frontier, public_private_gap, time_to_threshold
from participants.workspace import state, study_data

st.title("Gap closure")
if not state.is_staff():
    st.warning("This view is for analysts and admins.")
    st.stop()

data = study_data.load(state.server_url(), st.session_state[state.TOKEN])
with st.sidebar:
    axis = st.selectbox("x-axis", list(AXES), format_func=AXES.get, key="gap_axis")
    score = st.radio("score", ["public_pgr", "private_pgr"], key="gap_score",
                     format_func=lambda s: s.split("_")[0])
    price = st.number_input("compute $/hour", min_value=0.0, value=0.0, step=0.5,
                            key="gap_price")
frame = attempts_frame(data.attempts, study_start=data.study_start, sessions=data.sessions,
                       usage=data.usage, flags=data.flags, gpu_hour_price=price)
if frame.empty:
    st.info("No finished attempts yet.")
    st.stop()
left, middle, right = st.columns(3)
arms = left.multiselect("arms", sorted(frame["arm"].dropna().unique()),
                        default=sorted(frame["arm"].dropna().unique()), key="gap_arms")
tasks = middle.multiselect("tasks", sorted(frame["task"].unique()),
                           default=sorted(frame["task"].unique()), key="gap_tasks")
people = right.multiselect("participants (all if empty)",
                           sorted(frame["display_name"].unique()), key="gap_people")
low, high = float(frame[axis].min()), float(frame[axis].max())
window = st.slider("range", min_value=min(low, 0.0), max_value=max(high, 1.0),
                   value=(min(low, 0.0), max(high, 1.0)), key="gap_range") if high > low \
    else (low, high)
chosen = frame[frame["arm"].isin(arms) & frame["task"].isin(tasks)
               & frame[axis].between(*window)]
if people:
    chosen = chosen[chosen["display_name"].isin(people)]

bands = None
if st.toggle("bootstrap bands (95%, over test items and seeds)", key="gap_bands"):
    bands = study_data.frontier_bands(state.client(), chosen, x=axis, score=score)
st.plotly_chart(frontier_figure(chosen, x=axis, score=score, bands=bands), width="stretch",
                key="gap_frontier")
st.caption("Thin lines: each participant's best so far; thick: each arm's frontier; red "
           "crosses: flagged attempts. Hover a point for the attempt and its method.")

frontier = arm_frontier(chosen, x=axis, score=score)
hours = (data.study_end - data.study_start).total_seconds() / 3600
tab1, tab2, tab3, tab4 = st.tabs(["time to threshold", "activity", "public vs private",
                                  "generalization"])
tab1.dataframe(pd.merge(time_to_threshold(frontier, [0.2, 0.5, 0.8]),
                        area_under_frontier(arm_frontier(chosen, x="calendar_hours",
                                                         score=score), end=hours),
                        on="arm", how="outer"), hide_index=True)
tab2.dataframe(activity(chosen, window_hours=hours), hide_index=True)
tab3.dataframe(public_private_gap(chosen), hide_index=True)
if data.generalization.empty:
    tab4.info("No held-out re-runs yet: they come with `arena finalize`.")
else:
    tab4.plotly_chart(generalization_figure(data.generalization), key="gap_general")

st.download_button("Download the report (HTML)", key="gap_report",
                   data=study_data.report_html(data, score=score, gpu_hour_price=price),
                   file_name="w2s-arena-report.html", mime="text/html")
