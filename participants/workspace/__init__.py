"""The Streamlit workspace for human researchers: `streamlit run participants/workspace/app.py`.

It is one more client of `participants.sdk.ArenaClient`: every page reaches the study server over
HTTP through that class, exactly as the agents do, so no action exists only for humans.
The logic lives in small modules (`state`, `errors`, `editor`, `views`, `charts`); the files in
`app_pages/` only lay out widgets.
"""
