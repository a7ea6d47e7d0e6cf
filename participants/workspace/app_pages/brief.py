"""The task brief: the same markdown the agents read, the baselines' code, and the tasks."""

import streamlit as st

from participants.workspace import editor, state

client = state.client()
st.title("Task brief")

ROLES = """
**How this works.** A *weak teacher* was trained on a few gold labels and labelled the `train`
split; you never see gold labels. Your *method* — Python with `run(ctx)` — trains the *strong*
model from those weak labels and returns P(label = 1) for every `test` item. The server runs it
with seeds it chooses, in a sandbox, and scores it.

**PGR** (performance gap recovered) = (your accuracy − weak) / (ceiling − weak), where *weak*
is the teacher's accuracy and the *ceiling* is the strong model trained on gold labels: 0 means
you did no better than the teacher, 1 means you closed the whole gap. You see the public half
of `test`, rounded, with a 95% interval; the private half decides the study.

**Who is here.** *Participants* (humans in this workspace, AI agents through the same API) are
in arms that race each other; *analysts* compare the arms hour by hour; the *admin* runs the
study. Clock in while you work: active time is one of the axes the arms are compared on.
"""

brief_tab, baselines_tab, tasks_tab = st.tabs(["Brief", "Baselines", "Tasks"])

with brief_tab:
    st.info(ROLES, icon=":material/school:")
    brief = state.cached("brief", client.brief)
    if brief:
        st.markdown(brief)

with baselines_tab:
    baselines = state.cached("baselines", client.baselines)
    if baselines:
        st.caption("Five methods to start from; their PGR table is in the brief.")
        for name, source in baselines.items():
            with st.expander(name):
                st.code(source, language="python")
                if st.button("Open in the editor", key=f"brief_open_{name}"):
                    editor.load(source, f"baseline {name}")
                    st.switch_page("app_pages/editor.py")

with tasks_tab:
    tasks = state.cached("tasks", client.tasks)
    for t in tasks or []:
        with st.container(border=True):
            st.markdown(f"#### {t.name}  \n`{t.kind}` · {t.role.replace('_', ' ')}")
            st.markdown(t.description)  # in full: the description is the task's definition
            sizes = " · ".join(f"{n:,} {split}" for split, n in t.sizes.items())
            st.caption(f"labels: {', '.join(t.label_names)} · {sizes} · weak accuracy "
                       f"{t.weak} · ceiling accuracy {t.ceiling}")
