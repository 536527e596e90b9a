-- One row per inbound call that ended without a person answering: which callback it was given (or
-- why none). The primary key makes the decision once per call, even with several CTI processes.
CREATE TABLE missed_calls (
    linkedid     text PRIMARY KEY,
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz NOT NULL,
    reason       text NOT NULL CHECK (reason IN ('callback', 'already_holding', 'withheld', 'too_short')),
    callback_id  bigint REFERENCES callbacks (id)
);
CREATE INDEX missed_calls_started_idx ON missed_calls (started_at);
