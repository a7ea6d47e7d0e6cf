-- Dry runs are stored (they were in memory only): a re-sent request with the same idempotency
-- key gets the same answer after a server restart, a key reused with another request is a 409
-- (like attempts), and analysts count each arm's dry-run compute (cpu and slot seconds).
-- status: running (admitted; queued on or running on the dry-run lane) → ok | failed | lost
-- (the server stopped before it finished; no seconds measured, still one of the day's dry runs).
CREATE TABLE dry_runs (
    id VARCHAR NOT NULL,
    participant_id VARCHAR NOT NULL,
    task VARCHAR NOT NULL,
    code_sha256 VARCHAR NOT NULL,
    idempotency_key VARCHAR,
    request_sha256 VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    cpu_seconds DOUBLE,
    slot_seconds DOUBLE,
    result VARCHAR
);
