"""Post findings (optionally linked to my attempt, scored by the server) and read the forum."""

import streamlit as st

from participants.workspace import state, views

client = state.client()
ss = st.session_state
ss.setdefault("forum_flash", None)
ss.setdefault("forum_error", None)

st.title("Forum")

mine = state.fetch(client.attempts) or []
by_id = {v.id: v for v in mine}
with st.form("forum_post_form", clear_on_submit=False):
    c1, c2 = st.columns([1, 3])
    kind = c1.selectbox("Kind", views.FORUM_KINDS, key="forum_kind")
    title = c2.text_input("Title", max_chars=200, key="forum_title")
    body = st.text_area("Finding (markdown)", height=160, max_chars=20000, key="forum_body")
    linked = st.selectbox("Link one of my attempts (its score comes from the server)",
                          [None, *by_id], key="forum_attempt",
                          format_func=lambda i: "no link" if i is None
                          else views.attempt_label(by_id[i]))
    pressed = st.form_submit_button("Post", type="primary", icon=":material/send:",
                                    key="forum_submit")

if pressed:
    ss.forum_flash, ss.forum_error = None, None
    if not title.strip():
        ss.forum_error = "Give the post a title."
    else:
        post, error = state.call(client.post, kind, title.strip(), body, attempt_id=linked)
        ss.forum_error = error
        if post:
            ss.forum_flash = f"Posted “{post.title}”."
    st.rerun()
if ss.forum_error:
    st.error(ss.forum_error, icon=":material/error:")
if ss.forum_flash:
    st.success(ss.forum_flash, icon=":material/check_circle:")

st.subheader("Posts")
query = st.text_input("Search", placeholder="words in titles and bodies", key="forum_query")
posts = state.fetch(client.forum, query.strip() or None)
if posts is not None and not posts:
    st.info("No posts match." if query.strip() else "No posts yet.")
for post in posts or []:
    with st.container(border=True):
        st.markdown(f"#### {post.title}")
        st.caption(views.post_header(post))
        st.markdown(post.body)
