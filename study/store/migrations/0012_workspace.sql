-- The workspace: server-issued browser sessions (a reload stays signed in without the
-- participant token ever being stored in the page) and editor drafts (a reload keeps unsaved
-- code, and analysts can read how each arm's methods took shape between attempts).
CREATE TABLE web_sessions (
    id VARCHAR PRIMARY KEY,
    participant_id VARCHAR NOT NULL,
    token_id VARCHAR NOT NULL,
    secret_sha256 VARCHAR NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    ended_at TIMESTAMPTZ
);
CREATE TABLE drafts (
    id VARCHAR PRIMARY KEY,
    participant_id VARCHAR NOT NULL,
    saved_at TIMESTAMPTZ NOT NULL,
    task VARCHAR,
    origin VARCHAR,
    source_sha256 VARCHAR NOT NULL,
    source VARCHAR NOT NULL
);
-- Every seed's own output, not only the last seed's (the attempt page shows each).
ALTER TABLE seed_results ADD COLUMN log_tail VARCHAR;
-- The attempt an attempt was edited from (the attempt page diffs against it).
ALTER TABLE attempts ADD COLUMN parent_id VARCHAR;
