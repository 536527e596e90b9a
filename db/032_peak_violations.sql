-- R-PEAK: during peak, a pause or log-off (封线) taken at the phone is undone through AMI and
-- recorded here as a violation (fine rule `peak_pause`). One row per pause/removal even when
-- several CTI processes see the same AMI event (the unique key), so only one of them undoes it.
CREATE TABLE peak_violations (
    id           bigserial PRIMARY KEY,
    agent        text NOT NULL,                  -- MemberName (agent1)
    interface    text NOT NULL,                  -- PJSIP/agent1
    queue        text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('pause', 'logoff')),
    occurred_at  timestamptz NOT NULL,           -- the AMI event's Timestamp
    reason       text,                           -- PausedReason the agent chose
    peak_cause   text,                           -- why the center was in peak
    fine_rule    text NOT NULL DEFAULT 'peak_pause',
    fine_agent   numeric(10, 2) NOT NULL,        -- 元, from policy at the time
    undo_status  text NOT NULL DEFAULT 'pending' CHECK (undo_status IN ('pending', 'undone', 'failed')),
    undo_error   text,
    recorded_at  timestamptz NOT NULL,
    UNIQUE (agent, queue, kind, occurred_at)
);
CREATE INDEX peak_violations_agent_idx ON peak_violations (agent, occurred_at);
