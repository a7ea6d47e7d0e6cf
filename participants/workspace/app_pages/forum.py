"""Post findings (optionally linked to my attempt, scored by the server) and read the forum.
Each post has its own URL (`/forum?post=post_…`)."""

import hashlib
import uuid

import streamlit as st

from participants.workspace import state, views

client = state.client()
ss = st.session_state
ss.setdefault("forum_flash", None)
ss.setdefault("forum_error", None)
ss.setdefault("forum_nonce", uuid.uuid4().hex)
if ss.pop("forum_clear", False):  # a post went through: empty the form before it is drawn
    # Set, not deleted: a set value is sent to the browser, which would keep its own text.
    ss.forum_title, ss.forum_body, ss.forum_attempt = "", "", None

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
        # Same form contents since the last success, same key: a second click, or a retry
        # after a network error, returns the first post instead of posting twice.
        key = hashlib.sha256(f"{ss.forum_nonce}\0{kind}\0{title}\0{body}\0{linked}".encode())
        post, error = state.call(client.post, kind, title.strip(), body, attempt_id=linked,
                                 idempotency_key="ws-" + key.hexdigest()[:32])
        ss.forum_error = error  # on an error the form keeps its text
        if post:
            ss.forum_flash = (f"Posted “{post.title}”.", post.id)
            ss.forum_nonce, ss.forum_clear = uuid.uuid4().hex, True
    st.rerun()
if ss.forum_error:
    st.error(ss.forum_error, icon=":material/error:")
if ss.forum_flash:
    message, post_id = ss.forum_flash
    st.success(message, icon=":material/check_circle:")
    st.page_link("app_pages/forum.py", label="Its own page", icon=":material/link:",
                 query_params={"post": post_id})

me = state.me().participant.id
only = st.query_params.get("post")
st.subheader("Post" if only else "Posts")
if only:
    st.page_link("app_pages/forum.py", label="All posts", icon=":material/arrow_back:")
query = "" if only else st.text_input("Search", placeholder="words in titles and bodies",
                                      key="forum_query")
posts = state.fetch(client.forum, query.strip() or None)
if posts is not None and only:
    posts = [p for p in posts if p.id == only]
if posts is not None and not posts:
    st.info("No such post (or not visible to your arm)." if only else
            "No posts match." if query.strip() else "No posts yet.")
for post in posts or []:
    with st.container(border=True):
        st.markdown(f"#### {views.plain(post.title)}")
        st.caption(views.post_header(post, mine=post.participant_id == me))
        st.markdown(post.body)
        if not only:
            st.page_link("app_pages/forum.py", label="link", icon=":material/link:",
                         query_params={"post": post.id})
