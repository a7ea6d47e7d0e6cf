"""The task brief: the same markdown the agents read, the baselines' code, and the tasks."""

import pandas as pd
import streamlit as st

from participants.workspace import editor, state

client = state.client()
st.title("Task brief")

brief_tab, baselines_tab, tasks_tab = st.tabs(["Brief", "Baselines", "Tasks"])

with brief_tab:
    brief = state.fetch(client.brief)
    if brief:
        st.markdown(brief)

with baselines_tab:
    baselines = state.fetch(client.baselines)
    if baselines:
        st.caption("Five methods to start from; their PGR table is in the brief.")
        for name, source in baselines.items():
            with st.expander(name):
                st.code(source, language="python")
                if st.button("Open in the editor", key=f"brief_open_{name}"):
                    editor.load(source, f"baseline {name}")
                    st.switch_page("app_pages/editor.py")

with tasks_tab:
    tasks = state.fetch(client.tasks)
    if tasks:
        st.dataframe(pd.DataFrame([{
            "task": t.name, "kind": t.kind, "role": t.role, "weak": t.weak,
            "ceiling": t.ceiling, **{f"n {split}": n for split, n in t.sizes.items()},
            "labels": ", ".join(t.label_names), "description": t.description,
        } for t in tasks]), hide_index=True, width="stretch")
