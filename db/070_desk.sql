-- The agent's desk (issue 12): one disposition per call an agent handled, and the numbers agents
-- flagged "never call again" or complained about, for the outbound DNC check (R-DNC) to read.

CREATE TABLE dispositions (
    id          bigserial PRIMARY KEY,
    linkedid    text NOT NULL,                  -- the call (opaque id; the number is not repeated here)
    agent       text NOT NULL REFERENCES agents(id),
    outcome     text NOT NULL CHECK (outcome IN ('order_placed', 'inquiry', 'complaint', 'refusal',
                                                 'call_back', 'wrong_number', 'never_call')),
    category    text NOT NULL CHECK (category IN ('inquiry', 'booking', 'followup')),  -- seed 004 targets
    note        text NOT NULL DEFAULT '' CHECK (length(note) <= 2000),
    callback_at timestamptz,                    -- outcome call_back: when the customer asked to be called
    callback_id bigint REFERENCES callbacks(id),
    handled_s   numeric(10, 3),                 -- answer -> end, as the desk saw it
    at          timestamptz NOT NULL,
    CHECK ((outcome = 'call_back') = (callback_at IS NOT NULL)),
    UNIQUE (linkedid, agent)
);
CREATE INDEX dispositions_agent_idx ON dispositions (agent, at);

-- Agents' DNC requests. Categories are the outbound list's (`dnc.category`): never_call →
-- do_not_disturb, complaint → complaint. The outbound dialer reads this table alongside its own list
-- (or copies it in); rows are never deleted.
CREATE TABLE dnc_requests (
    id          bigserial PRIMARY KEY,
    number      text NOT NULL CHECK (number ~ '^\+?[0-9]{3,20}$'),   -- full number; never shown to agents
    category    text NOT NULL CHECK (category IN ('do_not_disturb', 'complaint')),
    reason      text NOT NULL DEFAULT '',
    linkedid    text,
    added_by    text NOT NULL,
    added_at    timestamptz NOT NULL
);
CREATE UNIQUE INDEX dnc_requests_once_idx ON dnc_requests (number, category);
