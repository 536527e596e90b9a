-- Shared reference data and the callback queue: several parts of cti use these.

-- Agents (坐席): who they are, where their phone is, the DID a customer dials to ask for them.
CREATE TABLE agents (
    id          text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.-]{1,64}$'),  -- e.g. agent1 (the PJSIP endpoint)
    name        text NOT NULL,
    interface   text NOT NULL,                 -- PJSIP/agent1, used as queue member Interface
    did         text UNIQUE,                   -- direct number: dialing it asks for this agent (R-PREFERRED)
    group_name  text NOT NULL DEFAULT 'default',
    supervisor  text REFERENCES agents(id),
    role        text NOT NULL DEFAULT 'agent' CHECK (role IN ('agent', 'supervisor', 'manager')),
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The callback queue (R-PEAK, R-NIGHT): one open row per number. A caller who calls again while
-- their callback is open joins it (call_count + 1, earliest first_call_at kept).
CREATE TABLE callbacks (
    id              bigserial PRIMARY KEY,
    number          text NOT NULL CHECK (number ~ '^\+?[0-9]{3,20}$'),  -- full number; display masks it
    did             text,                      -- the number the caller dialed; the callback presents it
    kind            text NOT NULL CHECK (kind IN ('peak', 'night', 'abandon', 'manual')),
    status          text NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'dialing', 'done', 'failed', 'cancelled')),
    outcome         text CHECK (outcome IN ('reached', 'no_answer', 'busy', 'wrong_number', 'declined',
                                            'done', 'failed', 'cancelled')),
    priority        integer NOT NULL DEFAULT 0,  -- higher first; then first_call_at
    first_call_at   timestamptz NOT NULL,
    last_call_at    timestamptz NOT NULL,
    call_count      integer NOT NULL DEFAULT 1 CHECK (call_count >= 1),
    due_by          timestamptz,               -- night callbacks: before 08:30 next morning
    next_attempt_at timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    caller_name_file text,                     -- recorded name (night capture)
    source_linkedid text,                      -- the inbound call that created it
    queue           text,
    preferred_agent text,
    claimed_by      text,                      -- CTI process holding it while dialing
    claimed_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX callbacks_one_open_per_number ON callbacks (number)
    WHERE status IN ('open', 'dialing');
CREATE INDEX callbacks_dispatch_idx ON callbacks (priority DESC, first_call_at)
    WHERE status = 'open';
