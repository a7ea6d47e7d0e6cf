"""Write or load a method, pick the task, see the quota, submit."""

import streamlit as st

from participants.workspace import editor, state
from participants.workspace.errors import format_seconds, format_when
from participants.workspace.views import short
from study.method_source import find_problem

MB = 1024 * 1024
client = state.client()
ss = st.session_state
ss.setdefault("editor_flash", None)
ss.setdefault("editor_error", None)
ss.setdefault("editor_upload_error", None)
ss.setdefault("editor_upload_seen", None)
ss.setdefault("editor_confirm", False)
ss.setdefault("editor_flash_attempt", None)

st.title("Method editor")

study = state.cached("study", client.study)
max_bytes = study.limits.get("max_source_bytes") if study else None
task_names = (study.tasks.get("hill_climb") or []) if study else []

quota = state.fetch(client.quota)
if quota:
    cols = st.columns(4)
    cols[0].metric("Attempts left today", f"{quota.attempts_left} / {quota.attempts_per_day}")
    cols[1].metric(f"{'GPU' if quota.compute_unit.startswith('GPU') else 'Compute'} time left "
                   "today", format_seconds(quota.compute_seconds_left))
    cols[2].metric("Running now", f"{quota.active_attempts} / {quota.concurrent_attempts}")
    cols[3].metric("Next attempt back", format_when(quota.next_attempt_at)
                   if quota.attempts_left == 0 else "—")

left, right = st.columns(2)
with left:
    baselines = state.cached("baselines", client.baselines) or {}
    picked = st.selectbox("Start from a baseline", list(baselines), index=None,
                          placeholder="choose a baseline", key="editor_baseline")
    if st.button("Load baseline", disabled=picked is None, key="editor_load_baseline"):
        editor.load(baselines[picked], f"baseline {picked}")
        ss.editor_flash, ss.editor_error = None, None
        st.rerun()
with right:
    # The study's limit, stated once, here; the widget refuses anything past the next whole
    # MB (its unit) and check_upload enforces the exact byte count, with its error right below.
    limit = f" · at most {max_bytes:,} bytes" if max_bytes else ""
    upload = st.file_uploader(f"…or upload a .py file{limit}", type=["py"], key="editor_upload",
                              max_upload_size=max(1, -(-max_bytes // MB)) if max_bytes else None)
    st.html("<style>[data-testid='stFileUploaderDropzoneInstructions'] "
            "{display: none}</style>")
    # An uploaded file stays attached across reruns; load it once, not on every rerun.
    if upload is not None and upload.file_id != ss.editor_upload_seen:
        ss.editor_upload_seen = upload.file_id
        text, ss.editor_upload_error = editor.check_upload(upload.name, upload.getvalue(),
                                                           max_bytes)
        if text is not None:
            editor.load(text, f"file {upload.name}")
            ss.editor_flash, ss.editor_error = None, None
            st.rerun()
    if ss.editor_upload_error:
        st.error(ss.editor_upload_error, icon=":material/error:")


def current_problem():
    return find_problem(editor.source()) if editor.source().strip() else None


# The header and the warning are filled after the editor has taken in what was typed.
header = st.empty()
marked = current_problem()
from_editor = editor.render(marked)
problem = current_problem()
if problem != marked and not from_editor:
    st.rerun()  # the gutter marker must sit on the line that is wrong now
header.caption(f"Editing: **{editor.origin_label()}** · Ctrl+Enter or the editor's Submit "
               "button submits exactly the text shown · your text is saved as a draft as you "
               "type")
if problem is not None:
    st.warning(problem.message, icon=":material/warning:")

# Plain widgets, not a form: a submit from inside the editor must see the current task and note.
c1, c2 = st.columns([1, 2])
task = c1.selectbox("Task", task_names, key="editor_task")
note = c2.text_input("Note (optional)", key="editor_note", max_chars=2000)
editor.save_draft(task)
pressed = st.button("Submit", type="primary", icon=":material/send:", key="editor_submit")


def problem_before_submit() -> str | None:
    return editor.precheck(editor.source(), max_bytes) or (None if task else "Pick a task first.")


def submit() -> None:
    text = editor.source()
    view, error = state.call(client.submit, text, task, note=note or None,
                             idempotency_key=editor.idempotency_key(text, task),
                             parent_id=editor.parent_id())
    if error:
        ss.editor_error = error
        return
    editor.submitted()
    where = f", #{view.queue_position} in queue" if view.queue_position is not None else ""
    ss.editor_flash = f"Attempt `{short(view.id)}` on {view.task} is {view.status.value}{where}."
    ss.editor_flash_attempt = view.id


if pressed or from_editor:
    ss.editor_flash, ss.editor_error = None, None
    ss.editor_error = problem_before_submit()
    clock = None if ss.editor_error else state.call(client.clock)[0]
    if clock is not None and clock.clocked_in_since is None:
        ss.editor_confirm = True  # ask first: clocked-out work is left out of active time
    elif not ss.editor_error:
        submit()
    st.rerun()

if ss.editor_confirm:
    with st.container(border=True):
        st.warning("You are clocked out. Attempts made while clocked out are left out of the "
                   "active-time analysis. Clock in first?", icon=":material/timer_off:")
        b1, b2, b3, _ = st.columns([1, 1, 1, 2])
        if b1.button("Clock in and submit", type="primary", key="editor_clock_submit"):
            state.call(client.clock_in)
            ss.editor_confirm = False
            submit()
            st.rerun()
        if b2.button("Submit anyway", key="editor_submit_anyway"):
            ss.editor_confirm = False
            submit()
            st.rerun()
        if b3.button("Cancel", key="editor_cancel"):
            ss.editor_confirm = False
            st.rerun()

if ss.editor_error:
    st.error(ss.editor_error, icon=":material/error:")
if ss.editor_flash:
    st.success(ss.editor_flash, icon=":material/check_circle:")
    st.page_link("app_pages/attempts.py", label="Watch it run", icon=":material/science:",
                 query_params={"attempt": ss.editor_flash_attempt})
