-- R-LINE-TEST (seed 004): every DID test-called at the start of the morning and the middle shift.
-- One row per test run, with its reason and timing (cti/linetest). A scheduled run's row is also its
-- claim: UNIQUE (did, shift, slot_date) lets exactly one CTI process insert it, so two processes never
-- both call. Manual runs (`cti linetest run`) have no shift. The fines' inputs of db/061 are written
-- from here: `test_lines` (the lines owed a test) and `line_tests` (a slot's result, ok | failed).
CREATE TABLE line_test_runs (
    id               bigserial PRIMARY KEY,
    did              text NOT NULL CHECK (did ~ '^\+?[0-9]{3,20}$'),
    shift            text,                       -- morning | middle; NULL: run by hand
    slot_date        date,                       -- the local day of the shift
    scheduled_at     timestamptz,                -- the shift's start
    status           text NOT NULL CHECK (status IN ('calling', 'passed', 'failed', 'skipped')),
    reason           text,                       -- why it failed / was skipped
    started_at       timestamptz,
    finished_at      timestamptz,
    duration_s       numeric(8, 3),              -- originate -> seen in the route AGI
    via              text NOT NULL CHECK (via IN ('schedule', 'cli', 'api')),
    claimed_by       text,                       -- host:pid of the process that ran it
    channel_id       text,                       -- our Originate's ChannelId (cti-lt-<id>)
    inbound_linkedid text,                       -- the call that came back in through from-trunk
    UNIQUE (did, shift, slot_date)
);
CREATE INDEX line_test_runs_calling_idx ON line_test_runs (did, started_at) WHERE status = 'calling';
CREATE INDEX line_test_runs_started_idx ON line_test_runs (coalesce(started_at, scheduled_at));

-- The inbound leg of a line test is no customer: the route AGI writes its missed_calls row at once,
-- so the live missed-call watcher and the CDR sweep (which skip decided calls) leave it alone.
ALTER TABLE missed_calls DROP CONSTRAINT missed_calls_reason_check;
ALTER TABLE missed_calls ADD CONSTRAINT missed_calls_reason_check
    CHECK (reason IN ('callback', 'already_holding', 'withheld', 'too_short', 'line_test'));
