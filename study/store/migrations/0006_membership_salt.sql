-- The secret that decides which test items are public (study.membership). It lives here only:
-- no export, bundle, response or log carries it, so no method can recompute the split.
ALTER TABLE study ADD COLUMN membership_salt VARCHAR;
-- One row per "small step" of the probe detector (study.integrity.flag_probing): an attempt
-- whose public predictions lie within probe_chain_items of an earlier attempt of its author.
CREATE TABLE probe_steps (
    attempt_id VARCHAR NOT NULL,
    participant_id VARCHAR NOT NULL,
    task VARCHAR NOT NULL,
    nearest_attempt VARCHAR NOT NULL,
    public_diff INTEGER NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
-- Usage reports come from the agent's own harness: the price stored in cost_usd is the one
-- the server recomputes (study.agent_limits); what the harness said is kept beside it.
ALTER TABLE usage ADD COLUMN reported_cost_usd DOUBLE;
ALTER TABLE usage ADD COLUMN self_reported BOOLEAN DEFAULT TRUE;
