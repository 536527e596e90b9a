-- Callback dispatch (R-PEAK): one row per Originate attempt, written and committed BEFORE the
-- Originate is sent, so an attempt is never sent twice (not across an AMI reconnect, not across a
-- CTI restart): an unresolved row is resolved from events, never re-sent.
CREATE TABLE callback_attempts (
    callback_id       bigint  NOT NULL REFERENCES callbacks (id),
    attempt           integer NOT NULL CHECK (attempt >= 1),
    channel_id        text    NOT NULL UNIQUE,   -- Originate ChannelId cti-cb-<id>-<attempt>; Uniqueid/Linkedid of the legs
    agent             text    NOT NULL,          -- agent1
    interface         text    NOT NULL,          -- PJSIP/agent1 (the Originate Channel)
    did               text    NOT NULL,          -- presented to the customer (R-OUT-CID)
    claimed_by        text    NOT NULL,          -- CTI process that recorded and sent it
    state             text    NOT NULL DEFAULT 'recorded'
                      CHECK (state IN ('recorded', 'sent', 'agent_answered', 'resolved')),
    outcome           text    CHECK (outcome IN ('reached', 'no_answer', 'busy', 'unreachable',
                                                 'agent_no_answer', 'agent_busy', 'agent_unavailable',
                                                 'agent_hangup', 'originate_error', 'not_sent')),
    action_id         text,                      -- ActionID the AMI client used (known after sending)
    originate_reason  text,                      -- OriginateResponse Reason (4 answered, 3 no answer, 0 other)
    agent_dial_status text,                      -- DialEnd DialStatus of the agent leg, when seen
    dial_status       text,                      -- DialEnd DialStatus of the customer leg
    recorded_at       timestamptz NOT NULL,
    sent_at           timestamptz,
    agent_answered_at timestamptz,
    resolved_at       timestamptz,
    PRIMARY KEY (callback_id, attempt),
    CHECK ((state = 'resolved') = (outcome IS NOT NULL))
);
CREATE INDEX callback_attempts_unresolved_idx ON callback_attempts (recorded_at) WHERE state <> 'resolved';
CREATE INDEX callback_attempts_action_idx ON callback_attempts (action_id) WHERE action_id IS NOT NULL;

-- What the agent said after a reached callback (wrong number, customer declined, done).
ALTER TABLE callbacks ADD COLUMN disposition_by text;

-- Due work for the dispatcher (the ORDER BY itself is computed from policy priorities at claim time).
CREATE INDEX callbacks_due_idx ON callbacks (next_attempt_at) WHERE status = 'open';
