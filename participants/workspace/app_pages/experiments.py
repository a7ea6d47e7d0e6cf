"""Experiments: run code in the method sandbox on the participant bundle, unscored, and read
what it printed, logged (ctx.log, charted) and wrote (plots, CSV). The same SDK calls the
agents' run_experiment tool makes. Each experiment has its own URL (`/experiments?id=exp_…`)."""

import functools
import hashlib
import uuid

import pandas as pd
import streamlit as st

from participants.workspace import state

TEMPLATE = '''import numpy as np


def run(ctx):
    # ctx's `train` is most of the train split; its `test` is a held-out slice of train.
    y = ctx.weak_soft_labels
    print("teacher's mean label on train:", float(y.mean()))
    ctx.log("teacher_mean", float(y.mean()))
    (ctx.files_dir / "labels.csv").write_text("p\\n" + "\\n".join(f"{v:.4f}" for v in y))
    head = ctx.lib.train_head(ctx.strong_features("train"), y, seed=ctx.seed)
    return head.predict_proba(ctx.strong_features("test"))  # compared with the teacher's
'''

client = state.client()
ss = st.session_state
ss.setdefault("exp_nonce", uuid.uuid4().hex)
ss.setdefault("exp_error", None)

st.title("Experiments")
st.caption("Unscored runs in the same sandbox as attempts, with their own daily budget. "
           "Return predictions for ctx's `test` (a held-out slice of train) to see how they "
           "compare with the teacher's labels there; write files to `ctx.files_dir`.")

tasks = [t.name for t in state.fetch(client.tasks) or []]
with st.form("exp_form"):
    task = st.selectbox("Task", tasks, key="exp_task")
    source = st.text_area("Code (with run(ctx))", TEMPLATE, height=320, key="exp_source")
    note = st.text_input("What this tests", key="exp_note")
    pressed = st.form_submit_button("Run experiment", type="primary",
                                    icon=":material/play_arrow:", key="exp_run")
if pressed:
    # Same form since the last success, same key: a double click runs one experiment.
    key = hashlib.sha256(f"{ss.exp_nonce}\0{task}\0{source}\0{note}".encode()).hexdigest()
    view, ss.exp_error = state.call(client.experiment, source, task, note=note or None,
                                    idempotency_key="ws-" + key[:32])
    if view:
        ss.exp_nonce = uuid.uuid4().hex
        st.query_params["id"] = view.id
    st.rerun()
if ss.exp_error:
    st.error(ss.exp_error, icon=":material/error:")

mine = state.fetch(client.experiments) or []
if not mine:
    st.info("No experiments yet.")
    st.stop()
ids = [e.id for e in mine]
chosen = st.query_params.get("id")
index = ids.index(chosen) if chosen in ids else 0
label = {e.id: f"{e.submitted_at:%m-%d %H:%M} · {e.status} · {e.note or e.id}" for e in mine}
picked = st.selectbox("Experiment", ids, index=index, format_func=label.get, key="exp_pick")


def show(view) -> None:
    st.subheader(f"{view.id}: {view.status}")
    if view.error:
        st.error(view.error, icon=":material/error:")
        if view.traceback:
            st.code(view.traceback[-4000:], language="text")
    if view.teacher_eval:
        st.dataframe(pd.DataFrame([view.teacher_eval]), hide_index=True)
    if view.stdout:
        st.code(view.stdout[-20000:], language="text")
    if view.metrics:
        frame = pd.DataFrame(view.metrics)
        frame["step"] = frame["step"].fillna(frame.groupby("name").cumcount())
        st.line_chart(frame.pivot_table(index="step", columns="name", values="value"))
    for f in view.files:
        # A file never changes once written: fetched once per session, not on every rerun
        # of the live fragment; a server error is a message, not a crashed page.
        content = state.cached(f"exp_file:{view.id}:{f.name}",
                               functools.partial(client.experiment_file, view.id, f.name),
                               ttl=24 * 3600)
        if content is None:
            continue
        if f.media_type.startswith("image/"):
            st.image(content, caption=f.name)
        else:
            st.download_button(f"{f.name} ({f.size} bytes)", content, file_name=f.name,
                               key=f"exp_file_{view.id}_{f.name}")
    with st.expander("Code"):
        st.code(view.source or "", language="python")


@st.fragment(run_every=2.0)
def live() -> None:
    """Only while it is queued or running; once it ends, the page shows it once more."""
    view, error = state.call(client.get_experiment, picked)
    if error:
        st.error(error)
    elif view.status in ("queued", "running"):
        show(view)
    else:
        st.rerun()


current, problem = state.call(client.get_experiment, picked)
if problem:
    st.error(problem)
elif current.status in ("queued", "running"):
    live()
else:
    show(current)
