"""Write or load a method, pick the task, see the quota, submit."""

import streamlit as st

from participants.workspace import editor, state
from participants.workspace.errors import format_seconds, format_when
from participants.workspace.views import short

client = state.client()
ss = st.session_state
ss.setdefault("editor_flash", None)
ss.setdefault("editor_error", None)
ss.setdefault("editor_upload_seen", None)
ss.setdefault("editor_study", None)

st.title("Method editor")

# The study's tasks and size limit change only by an audited amendment: fetch once per session.
if ss.editor_study is None:
    ss.editor_study = state.fetch(client.study)
study = ss.editor_study
max_bytes = study.limits.get("max_source_bytes") if study else None
task_names = (study.tasks.get("hill_climb") or []) if study else []

quota = state.fetch(client.quota)
if quota:
    cols = st.columns(4)
    cols[0].metric("Attempts left today", f"{quota.attempts_left} / {quota.attempts_per_day}")
    cols[1].metric("Compute left today", format_seconds(quota.compute_seconds_left))
    cols[2].metric("Running now", f"{quota.active_attempts} / {quota.concurrent_attempts}")
    cols[3].metric("Next attempt back", format_when(quota.next_attempt_at)
                   if quota.attempts_left == 0 else "—")

left, right = st.columns(2)
with left:
    baselines = state.fetch(client.baselines) or {}
    picked = st.selectbox("Start from a baseline", list(baselines), index=None,
                          placeholder="choose a baseline", key="editor_baseline")
    if st.button("Load baseline", disabled=picked is None, key="editor_load_baseline"):
        editor.load(baselines[picked], f"baseline {picked}")
        ss.editor_flash, ss.editor_error = None, None
        st.rerun()
with right:
    limit = f" (at most {max_bytes:,} bytes)" if max_bytes else ""
    upload = st.file_uploader(f"…or upload a .py file{limit}", type=["py"],
                              key="editor_upload")
    # An uploaded file stays attached across reruns; load it once, not on every rerun.
    if upload is not None and upload.file_id != ss.editor_upload_seen:
        ss.editor_upload_seen = upload.file_id
        text, error = editor.check_upload(upload.name, upload.getvalue(), max_bytes)
        if error:
            ss.editor_error = error
        else:
            editor.load(text, f"file {upload.name}")
            ss.editor_flash, ss.editor_error = None, None
            st.rerun()

st.caption(f"Editing: {ss[editor.ORIGIN]} · Ctrl+Enter or the editor's Submit button submits "
           "exactly the text shown")
from_editor = editor.render()

# Plain widgets, not a form: a submit from inside the editor must see the current task and note.
c1, c2 = st.columns([1, 2])
task = c1.selectbox("Task", task_names, key="editor_task")
note = c2.text_input("Note (optional)", key="editor_note", max_chars=2000)
pressed = st.button("Submit", type="primary", icon=":material/send:", key="editor_submit")

if pressed or from_editor:
    ss.editor_flash, ss.editor_error = None, None
    text = editor.source()
    problem = editor.precheck(text, max_bytes) or (None if task else "Pick a task first.")
    if problem:
        ss.editor_error = problem
    else:
        view, error = state.call(client.submit, text, task, note=note or None,
                                 idempotency_key=editor.idempotency_key(text, task))
        if error:
            ss.editor_error = error
        else:
            editor.submitted()
            where = (f", #{view.queue_position} in queue" if view.queue_position is not None
                     else "")
            ss.editor_flash = (f"Attempt `{short(view.id)}` on {view.task} is "
                               f"{view.status.value}{where}. Follow it on the Attempts page.")
    st.rerun()

if ss.editor_error:
    st.error(ss.editor_error, icon=":material/error:")
if ss.editor_flash:
    st.success(ss.editor_flash, icon=":material/check_circle:")
    st.page_link("app_pages/attempts.py", label="Go to my attempts", icon=":material/science:")
