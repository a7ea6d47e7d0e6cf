"""Analysts: what each participant spent — model turns, tokens, dollars, active hours — whether
each agent is running, idle or stopped (and why), and the agents' transcripts."""

import json

import pandas as pd
import streamlit as st

from participants.workspace import state
from participants.workspace.views import IDLE_AFTER, agent_status

st.title("Agents' usage")
if not state.is_staff():
    st.warning("This view is for analysts and admins.")
    st.stop()
client = state.client()
usage = state.fetch(client.usage)
if not usage:
    st.info("No participants yet.")
    st.stop()
table = pd.DataFrame([{
    "participant": u.display_name, "arm": u.arm, "kind": u.kind,
    "status": agent_status(u.turns, u.last_turn_at, u.stopped), "turns": u.turns,
    "input tokens": u.input_tokens, "output tokens": u.output_tokens,
    "cache read": u.cache_read_tokens, "cache write": u.cache_write_tokens,
    "cost ($)": u.cost_usd, "active hours": u.active_hours, "last turn": u.last_turn_at,
    "participant_id": u.participant_id} for u in usage])
c1, c2, c3 = st.columns(3)
agents = table[table["turns"] > 0]
c1.metric("Agents with turns", len(agents))
c2.metric("Running now", int((agents["status"] == "running").sum()))
c3.metric("Spent so far", f"${table['cost ($)'].sum():,.2f}")
st.dataframe(table.drop(columns=["participant_id"]), hide_index=True, width="stretch",
             column_config={
                 "cost ($)": st.column_config.NumberColumn(format="$%.2f"),
                 "active hours": st.column_config.NumberColumn(format="%.1f"),
                 "last turn": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
                 "status": st.column_config.TextColumn(
                     help=f"running: a model turn in the last {IDLE_AFTER.seconds // 60} "
                          "minutes; stopped: its harness stopped it (a budget), with why")})
if not agents.empty:
    pick = st.selectbox("transcript of", agents["participant"], key="usage_who")
    pid = agents.loc[agents["participant"] == pick, "participant_id"].iloc[0]
    for entry in state.fetch(client.transcript, pid) or []:
        with st.chat_message("assistant" if entry["role"] == "assistant" else "user"):
            st.caption(f"{entry['role']} · iteration {entry['iteration']} · "
                       f"{entry['turn_key']}")
            try:
                st.json(json.loads(entry["content"]), expanded=False)
            except json.JSONDecodeError:
                st.text(entry["content"])
