-- Who the CTI has logged in (R-LOGIN). The CTI owns queue membership: Asterisk forgets dynamic
-- members on every restart (persistentmembers = no, capture 17), so after each AMI (re)connect the
-- CTI puts every open session back, with its pause, from this table -- never from memory.
-- One row per login; the open row (logout_at IS NULL) is the agent's current state. This is what the
-- CTI GRANTED; the facts `agent_sessions` / `agent_pauses` (010) are what Asterisk DID, rebuilt from
-- QueueMember* events (Auto-Pause included, and a restart that silently drops members). Every
-- request, granted or refused, is also an event (agent_login / agent_logout / agent_pause / ...).
CREATE TABLE agent_logins (
    id            bigserial PRIMARY KEY,
    agent         text NOT NULL REFERENCES agents(id),
    queues        text[] NOT NULL CHECK (cardinality(queues) >= 1),
    penalty       integer NOT NULL DEFAULT 0 CHECK (penalty >= 0),
    login_at      timestamptz NOT NULL,
    login_via     text NOT NULL CHECK (login_via IN ('phone', 'cli', 'panel', 'api')),
    logout_at     timestamptz,
    logout_via    text CHECK (logout_via IN ('phone', 'cli', 'panel', 'api')),
    -- the current pause (R-BREAK: who is out and until when)
    paused        boolean NOT NULL DEFAULT false,
    pause_reason  text,
    paused_at     timestamptz,
    pause_until   timestamptz,
    restored_at   timestamptz,            -- last time a reconnect put this session back
    CHECK (NOT paused OR (pause_reason IS NOT NULL AND paused_at IS NOT NULL)),
    CHECK (logout_at IS NULL OR logout_at >= login_at)
);
CREATE UNIQUE INDEX agent_logins_one_open ON agent_logins (agent) WHERE logout_at IS NULL;
CREATE INDEX agent_logins_login_idx ON agent_logins (login_at);
