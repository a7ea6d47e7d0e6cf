-- Integrity: flags for analysts, Ladder release, disqualification, and audit runs.
ALTER TABLE attempts ADD COLUMN released BOOLEAN DEFAULT TRUE;
ALTER TABLE attempts ADD COLUMN disqualified BOOLEAN DEFAULT FALSE;
CREATE TABLE flags (
    id VARCHAR PRIMARY KEY,
    attempt_id VARCHAR NOT NULL,
    participant_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    detail VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE audits (
    id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    attempt_id VARCHAR NOT NULL,
    task VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    pgr DOUBLE,
    accuracy DOUBLE,
    scores_json VARCHAR,
    error VARCHAR
);
