-- Several CTI processes on one database (issue 18, decision 0110).

-- Each process renews its lease every few seconds; a process that died (SIGKILL, power) lets it lapse.
-- Wall-clock time (now()), not the scaled clock of a rehearsal: liveness is measured in real seconds.
CREATE TABLE process_leases (
    process    text PRIMARY KEY,                 -- host:pid (the dispatcher's worker id)
    expires_at timestamptz NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now()
);

-- One live claim per agent, whatever rings them: a callback attempt, an outbound dial, a desk
-- click-to-call. Written in the same transaction as the attempt/dial row (INSERT ... ON CONFLICT DO
-- NOTHING: a constraint, not a read-then-write), deleted when the attempt resolves. A claim whose
-- process has no live lease is dead and is deleted by the next process that wants the agent.
CREATE TABLE agent_claims (
    agent      text PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('callback', 'outbound', 'desk')),
    ref        text NOT NULL UNIQUE,             -- the ChannelId: cti-cb-…, cti-ob-…, cti-desk-…
    process    text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agent_claims_process_idx ON agent_claims (process);

-- The leader's term: the token grows by one at every election; a leader-only write checks it in its
-- own transaction (FOR SHARE), so a deposed leader's late write fails instead of landing.
CREATE TABLE leader_terms (
    name   text PRIMARY KEY,                     -- 'site'
    token  bigint NOT NULL,
    holder text NOT NULL,
    since  timestamptz NOT NULL DEFAULT now()
);

-- Several Asterisk servers: each agent's phone is registered on one of them (settings name them).
ALTER TABLE agents ADD COLUMN pbx text NOT NULL DEFAULT 'default';
