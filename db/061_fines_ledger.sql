-- The fines ledger (罚款台账) and rewards, derived by `cti fines rebuild` from facts and events.
-- Money is integer fen (分): 0.20 元 = 20; never float. Ids are deterministic (rule:source:person),
-- so a rebuild writes the same rows and waivers (keyed by ledger id, in their own table) survive it.

CREATE TABLE fine_ledger (
    id            text PRIMARY KEY,               -- e.g. missed_call:1795430750.0:agent1
    violation_id  text NOT NULL,                  -- rule:source — groups the rows of one violation
    rule          text NOT NULL,                  -- policy fines key (missed_call …)
    person        text,                           -- who pays (agent or supervisor id); NULL: nobody known
    role          text NOT NULL CHECK (role IN ('agent', 'supervisor')),
    amount_fen    bigint NOT NULL CHECK (amount_fen >= 0),
    points        integer NOT NULL DEFAULT 0,
    occurred_at   timestamptz NOT NULL,
    source_kind   text NOT NULL,                  -- call | peak_violation | pause | session | line_test | week
    source_id     text NOT NULL,                  -- linkedid / row id the row can be traced to
    detail        jsonb NOT NULL DEFAULT '{}'::jsonb,
    derived_at    timestamptz NOT NULL
);
CREATE INDEX fine_ledger_time_idx ON fine_ledger (occurred_at);
CREATE INDEX fine_ledger_person_idx ON fine_ledger (person, occurred_at);

-- A waiver (免罚): who, why, when. One per ledger row; removing one is audited too.
CREATE TABLE fine_waivers (
    ledger_id  text PRIMARY KEY,                  -- no FK: the ledger row is replaced by each rebuild
    waived_by  text NOT NULL,
    reason     text NOT NULL CHECK (length(reason) > 0),
    waived_at  timestamptz NOT NULL
);

CREATE TABLE fine_waiver_audit (
    id         bigserial PRIMARY KEY,
    ledger_id  text NOT NULL,
    action     text NOT NULL CHECK (action IN ('waive', 'unwaive')),
    actor      text NOT NULL,
    role       text NOT NULL,
    reason     text NOT NULL,
    at         timestamptz NOT NULL
);

-- Dismissal flags (劝退): an agent whose count of a rule's violations in a month reaches the rule's
-- `dismissal_after` (3 ignored named-agent requests). Derived with the ledger.
CREATE TABLE dismissal_flags (
    agent      text NOT NULL,
    rule       text NOT NULL,
    month      date NOT NULL,                     -- first day of the site-local month
    count      integer NOT NULL,
    flagged_at timestamptz NOT NULL,              -- the violation that reached the threshold
    PRIMARY KEY (agent, rule, month)
);

-- Rewards: champions (日/周/月冠军) and commission per effective order, also derived.
CREATE TABLE rewards (
    id           text PRIMARY KEY,                -- champion:day:2026-11-23 / commission:day:2026-11-23:agent1
    kind         text NOT NULL CHECK (kind IN ('champion', 'commission')),
    period       text NOT NULL CHECK (period IN ('day', 'week', 'month')),
    period_start date NOT NULL,
    agent        text NOT NULL,
    orders       integer NOT NULL,
    amount_fen   bigint NOT NULL CHECK (amount_fen >= 0),
    derived_at   timestamptz NOT NULL
);
CREATE INDEX rewards_period_idx ON rewards (period_start);

-- Inputs the fines need that nothing writes yet (their writers are other issues' work):
-- R-LINE-TEST: the lines to test and each test's result (an Originate per line, twice a day).
CREATE TABLE test_lines (
    line    text PRIMARY KEY,                     -- the DID / trunk number tested
    active  boolean NOT NULL DEFAULT true
);
CREATE TABLE line_tests (
    line       text NOT NULL,
    day        date NOT NULL,                     -- site-local date
    slot       text NOT NULL,                     -- policy shift name (morning, middle)
    tested_at  timestamptz NOT NULL,
    result     text NOT NULL CHECK (result IN ('ok', 'failed')),
    PRIMARY KEY (line, day, slot)
);
-- R-FOLLOWUP: one row per follow-up (回访) call an agent made.
CREATE TABLE followup_calls (
    id         bigserial PRIMARY KEY,
    agent      text NOT NULL,
    called_at  timestamptz NOT NULL,
    linkedid   text,
    outcome    text
);
CREATE INDEX followup_calls_agent_idx ON followup_calls (agent, called_at);
CREATE INDEX followup_calls_linkedid_idx ON followup_calls (linkedid);

-- Orders from the order system (HTTP API, CSV/XLSX import): an external id makes an import
-- idempotent; `entered_by` is who keyed it (the owner follows R-FIRST-OWNER).
ALTER TABLE orders
    ADD COLUMN external_id text UNIQUE,
    ADD COLUMN entered_by text,
    ADD COLUMN source text NOT NULL DEFAULT 'agi';
-- rewards and the champions' race read orders by time
CREATE INDEX orders_created_idx ON orders (created_at);
