-- AI participants: every model turn's tokens and dollars, and the transcripts analysts read.
CREATE TABLE usage (
    participant_id VARCHAR NOT NULL,
    turn_key VARCHAR NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    model VARCHAR NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cache_read_tokens BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    cost_usd DOUBLE NOT NULL
);
CREATE TABLE transcripts (
    participant_id VARCHAR NOT NULL,
    turn_key VARCHAR NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    iteration INTEGER NOT NULL,
    role VARCHAR NOT NULL,
    content VARCHAR NOT NULL
);
