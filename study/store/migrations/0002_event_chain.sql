-- Each event carries the hash of the one before it: an edit made outside the server breaks
-- the chain at that row, and `arena audit verify` names it.
ALTER TABLE events ADD COLUMN prev_hash VARCHAR;
ALTER TABLE events ADD COLUMN hash VARCHAR;
