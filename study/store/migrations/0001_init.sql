-- The study log. Only the study server opens this file read-write.
-- attempts carries no PRIMARY KEY/UNIQUE index on purpose: DuckDB rewrites updated rows, and
-- an index on a table updated many times per transaction can report false duplicates. The
-- server enforces id and idempotency-key uniqueness under its single write lock.
CREATE TABLE study (
    id INTEGER PRIMARY KEY,
    name VARCHAR NOT NULL,
    protocol_json VARCHAR NOT NULL,
    protocol_hash VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    starts_at TIMESTAMPTZ NOT NULL,
    ends_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE participants (
    id VARCHAR PRIMARY KEY,
    display_name VARCHAR NOT NULL,
    role VARCHAR NOT NULL,
    arm VARCHAR,
    kind VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE tokens (
    id VARCHAR PRIMARY KEY,
    participant_id VARCHAR NOT NULL,
    token_sha256 VARCHAR NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
CREATE TABLE attempts (
    id VARCHAR NOT NULL,
    participant_id VARCHAR NOT NULL,
    task VARCHAR NOT NULL,
    task_hash VARCHAR,
    code_sha256 VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    note VARCHAR,
    idempotency_key VARCHAR,
    status VARCHAR NOT NULL,
    tries INTEGER NOT NULL DEFAULT 0,
    seeds VARCHAR NOT NULL,
    protocol_hash VARCHAR NOT NULL,
    scorer_version VARCHAR NOT NULL,
    submitted_at TIMESTAMPTZ NOT NULL,
    queued_at TIMESTAMPTZ,
    started_at TIMESTAMPTZ,
    heartbeat_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    public_pgr DOUBLE,
    public_pgr_se DOUBLE,
    public_accuracy DOUBLE,
    private_pgr DOUBLE,
    private_pgr_se DOUBLE,
    private_accuracy DOUBLE,
    scores_json VARCHAR,
    wall_seconds DOUBLE,
    cpu_seconds DOUBLE,
    peak_mb DOUBLE,
    sandboxed BOOLEAN,
    charged BOOLEAN NOT NULL DEFAULT TRUE,
    error VARCHAR,
    error_kind VARCHAR,
    traceback VARCHAR,
    log_tail VARCHAR
);
CREATE TABLE seed_results (
    attempt_id VARCHAR NOT NULL,
    seed BIGINT NOT NULL,
    status VARCHAR NOT NULL,
    accuracy DOUBLE,
    wall_seconds DOUBLE,
    cpu_seconds DOUBLE,
    peak_mb DOUBLE,
    error VARCHAR,
    probs BLOB
);
CREATE SEQUENCE events_id START 1;
CREATE TABLE events (
    id BIGINT NOT NULL DEFAULT nextval('events_id'),
    occurred_at TIMESTAMPTZ NOT NULL,
    kind VARCHAR NOT NULL,
    actor VARCHAR,
    attempt_id VARCHAR,
    payload VARCHAR NOT NULL
);
CREATE TABLE sessions (
    id VARCHAR PRIMARY KEY,
    participant_id VARCHAR NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    ended_at TIMESTAMPTZ
);
CREATE TABLE forum_posts (
    id VARCHAR PRIMARY KEY,
    participant_id VARCHAR NOT NULL,
    arm VARCHAR,
    kind VARCHAR NOT NULL,
    title VARCHAR NOT NULL,
    body VARCHAR NOT NULL,
    attempt_id VARCHAR,
    created_at TIMESTAMPTZ NOT NULL
);
