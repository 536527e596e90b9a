-- TV-ad peak mode (R-PEAK): the media schedule, the supervisor switch, and the last decided state.

-- Ad airings. A peak window is starts_at .. starts_at + duration + tail (tail NULL: policy default).
CREATE TABLE media_airings (
    id             bigserial PRIMARY KEY,
    channel        text NOT NULL CHECK (length(channel) BETWEEN 1 AND 100),   -- TV channel, e.g. CCTV-1
    program        text NOT NULL CHECK (length(program) BETWEEN 1 AND 200),
    starts_at      timestamptz NOT NULL,
    duration_s     integer NOT NULL CHECK (duration_s BETWEEN 1 AND 86400),
    expected_calls integer NOT NULL DEFAULT 0 CHECK (expected_calls >= 0),    -- expected response
    tail_minutes   double precision CHECK (tail_minutes >= 0 AND tail_minutes <= 1440),
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX media_airings_starts_idx ON media_airings (starts_at);

-- The supervisor switch: one row. 'auto' = schedule and queue figures decide.
CREATE TABLE peak_switch (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    mode       text NOT NULL CHECK (mode IN ('on', 'off', 'auto')),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL
);
INSERT INTO peak_switch (mode, updated_by) VALUES ('auto', 'migration');

-- What the peak monitor last decided, so a restart resumes its hysteresis and other processes
-- (pause guard, dialer, `cti peak status`) can read it.
CREATE TABLE peak_state (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    in_peak    boolean NOT NULL,
    cause      text NOT NULL,
    since      timestamptz NOT NULL,
    airing_id  bigint,
    calm_since timestamptz,
    updated_at timestamptz NOT NULL
);
