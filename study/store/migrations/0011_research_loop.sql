-- The research loop: forum posts carry an idempotency key (a resumed agent never posts twice),
-- reads of an arm-mate's code are logged (information flow becomes data), and experiments
-- (unscored sandboxed runs on the participant bundle) are stored like attempts.
ALTER TABLE forum_posts ADD COLUMN idempotency_key VARCHAR;
CREATE TABLE code_reads (
    reader_id VARCHAR NOT NULL,
    attempt_id VARCHAR NOT NULL,
    author_id VARCHAR NOT NULL,
    read_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE experiments (
    id VARCHAR NOT NULL,
    participant_id VARCHAR NOT NULL,
    task VARCHAR NOT NULL,
    code_sha256 VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    note VARCHAR,
    idempotency_key VARCHAR,
    status VARCHAR NOT NULL,
    seed BIGINT NOT NULL,
    submitted_at TIMESTAMPTZ NOT NULL,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    wall_seconds DOUBLE,
    cpu_seconds DOUBLE,
    peak_mb DOUBLE,
    stdout VARCHAR,
    metrics VARCHAR,
    teacher_eval VARCHAR,
    error VARCHAR,
    traceback VARCHAR
);
CREATE TABLE experiment_files (
    experiment_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    media_type VARCHAR NOT NULL,
    content BLOB NOT NULL
);
