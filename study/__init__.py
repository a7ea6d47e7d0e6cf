"""The study's core: tasks and data, scoring, and (later) the protocol, store and server."""
