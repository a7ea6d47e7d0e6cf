-- The secret that decides which test items are public (study.membership). It lives here only:
-- no export, bundle, response or log carries it, so no method can recompute the split.
ALTER TABLE study ADD COLUMN membership_salt VARCHAR;
