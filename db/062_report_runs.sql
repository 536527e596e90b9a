-- Scheduled reports (seed 000 §17 §18): each (kind, site-local day) runs once, whichever CTI process
-- claims it first (the primary key); a claim left unfinished by a crashed process is taken over
-- after a while. Every download of a report is logged (full numbers: who, when, what).
CREATE TABLE report_runs (
    kind        text NOT NULL,                    -- midday | afternoon | after_sales_log | shift_end:<shift>
    day         date NOT NULL,                    -- the site-local day the slot belongs to
    due_at      timestamptz NOT NULL,
    claimed_by  text NOT NULL,
    claimed_at  timestamptz NOT NULL,
    finished_at timestamptz,
    output      jsonb,
    PRIMARY KEY (kind, day)
);

CREATE TABLE report_downloads (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    username    text NOT NULL,
    role        text NOT NULL,
    report      text NOT NULL,                    -- what was downloaded (kind, period, format)
    full_numbers boolean NOT NULL,
    rows        integer
);
