"""Sign in with a participant token (kept in the session only)."""

import streamlit as st

from participants.workspace import state

st.title("w2s-arena workspace")
st.write("Weak-to-strong supervision race: write a method, the server runs and scores it.")

if st.session_state.get(state.NOTICE):
    st.warning(st.session_state[state.NOTICE], icon=":material/lock:")

with st.form("signin_form", border=True):
    token = st.text_input("Participant token", type="password", key="signin_token",
                          help="From the study admin (`arena up` prints one). It stays in "
                               "this browser session and is never put in the URL.")
    pressed = st.form_submit_button("Sign in", type="primary", key="signin_submit")

if pressed:
    error = state.sign_in(token)
    if error:
        st.error(error, icon=":material/error:")
    else:
        st.rerun()
st.caption(f"Study server: `{state.server_url()}` (set `ARENA_URL` to change it)")
