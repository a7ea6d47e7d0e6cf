-- Operations: compute is reserved at submit (seeds × per-seed limit) and settled at finish in
-- slot time (the wall time the run held its worker slot); the event chain may be keyed.
ALTER TABLE attempts ADD COLUMN reserved_seconds DOUBLE;
ALTER TABLE attempts ADD COLUMN slot_seconds DOUBLE;
-- 'hmac-sha256' for studies made with a key file; 'sha256' for those made before keys.
CREATE TABLE chain_meta (
    id INTEGER NOT NULL,
    scheme VARCHAR NOT NULL
);
