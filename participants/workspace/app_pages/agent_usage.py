"""Analysts: what each participant spent — model turns, tokens, dollars, active hours — and
the agents' transcripts."""

import json

import pandas as pd
import streamlit as st

from participants.workspace import state

st.title("Agents' usage")
if not state.is_staff():
    st.warning("This view is for analysts and admins.")
    st.stop()
client = state.client()
usage = state.fetch(client.usage)
if usage:
    table = pd.DataFrame([u.model_dump() for u in usage])
    st.dataframe(table.drop(columns=["participant_id"]), hide_index=True, width="stretch")
    agents = table[table["turns"] > 0]
    if not agents.empty:
        pick = st.selectbox("transcript of", agents["display_name"], key="usage_who")
        pid = agents.loc[agents["display_name"] == pick, "participant_id"].iloc[0]
        for entry in state.fetch(client.transcript, pid) or []:
            with st.chat_message("assistant" if entry["role"] == "assistant" else "user"):
                st.caption(f"{entry['role']} · iteration {entry['iteration']} · "
                           f"{entry['turn_key']}")
                try:
                    st.json(json.loads(entry["content"]), expanded=False)
                except json.JSONDecodeError:
                    st.markdown(entry["content"])
else:
    st.info("No participants yet.")
