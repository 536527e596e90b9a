-- Call and agent facts derived from the events log by cti.facts.derive (a pure function of the ordered
-- AMI stream). `cti facts rebuild --since T` deletes the rows derived from T on and derives them again,
-- so every column here is reproducible from `events`; nothing is written by hand.

CREATE TABLE call_facts (
    linkedid          text PRIMARY KEY,
    started_at        timestamptz NOT NULL,               -- caller channel created (call arrival)
    did               text,                               -- number dialled (Exten / CTI_DNIS)
    caller_num        text,                               -- full number: never shown to agents (R-MASK)
    caller_masked     text,                               -- display copy
    queue             text,
    offered_at        timestamptz,                        -- QueueCallerJoin
    answered_by       text,                               -- queue member name (agentN)
    answered_at       timestamptz,
    time_to_answer_s  numeric(10, 3),                     -- arrival -> answer (R-30S)
    hold_s            numeric(10, 3),                     -- queue wait before answer or abandon
    rings_to_answer   integer,                            -- ring cycles the answering agent heard (R-RING2)
    talk_s            numeric(10, 3),
    hung_up_first     text,                               -- caller | agent | transfer (R-HANGUP-LAST)
    abandoned         boolean NOT NULL DEFAULT false,
    abandon_wait_s    numeric(10, 3),
    abandon_position  integer,
    agents_logged_in  integer,                            -- members logged in when offered (R-MISSED)
    recording_file    text,                               -- R-REC
    ended_at          timestamptz,
    gap               boolean NOT NULL DEFAULT false,     -- a resync happened while live
    asterisk          jsonb NOT NULL DEFAULT '{}'::jsonb  -- Asterisk's integer HoldTime/TalkTime/RingTime
);
CREATE INDEX call_facts_started_idx ON call_facts (started_at);
CREATE INDEX call_facts_agent_idx ON call_facts (answered_by, answered_at);

CREATE TABLE call_rings (
    linkedid        text NOT NULL,
    agent_uniqueid  text NOT NULL,                        -- the agent leg that rang
    agent           text NOT NULL,
    queue           text,
    started_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    outcome         text,                                 -- answered | no_answer | cancel | hangup | busy ...
    PRIMARY KEY (linkedid, agent_uniqueid)
);
CREATE INDEX call_rings_agent_idx ON call_rings (agent, started_at);

CREATE TABLE agent_sessions (
    agent      text NOT NULL,
    queue      text NOT NULL,
    interface  text NOT NULL,
    login_at   timestamptz NOT NULL,                      -- QueueMemberAdded
    logout_at  timestamptz,                               -- QueueMemberRemoved
    PRIMARY KEY (queue, interface, login_at)
);
CREATE INDEX agent_sessions_agent_idx ON agent_sessions (agent, login_at);

CREATE TABLE agent_pauses (
    agent       text NOT NULL,
    queue       text NOT NULL,
    reason      text NOT NULL,                            -- PausedReason (Auto-Pause, lunch, ...)
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz,
    duration_s  numeric(10, 3),
    PRIMARY KEY (agent, queue, started_at)
);

CREATE TABLE agent_ring_no_answer (
    linkedid  text NOT NULL,
    agent     text NOT NULL,
    queue     text NOT NULL,
    at        timestamptz NOT NULL,
    ring_ms   integer NOT NULL,                           -- AgentRingNoAnswer.RingTime is milliseconds
    PRIMARY KEY (linkedid, agent, at)
);
CREATE INDEX agent_ring_no_answer_agent_idx ON agent_ring_no_answer (agent, at);
