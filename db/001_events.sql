-- The append-only event log every part of cti writes to. Range-partitioned by UTC day; partitions
-- are created ahead by cti_ensure_event_partitions() (called by the store before each new day).
-- Idempotent: (ts, key) is the natural key; replaying the same input stores it once.
CREATE SEQUENCE events_seq AS bigint;

CREATE TABLE events (
    ts        timestamptz NOT NULL,            -- when it happened (Asterisk's Timestamp where present)
    key       text        NOT NULL,            -- natural key, unique per event
    seq       bigint      NOT NULL DEFAULT nextval('events_seq'),  -- arrival order
    source    text        NOT NULL CHECK (source IN ('ami', 'agi', 'cti', 'sim')),
    type      text        NOT NULL,
    uniqueid  text,
    linkedid  text,
    agent     text,
    queue     text,
    payload   jsonb       NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ts, key)
) PARTITION BY RANGE (ts);

-- No secondary indexes: each one costs about a third of the ingest rate (bench/event_store.py).
-- Per-call questions go to the fact tables, which point back here by ts range + linkedid.

CREATE FUNCTION cti_ensure_event_partitions(first_day date, days integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    d date;
    made integer := 0;
    part text;
BEGIN
    -- two processes creating the same day's partition would race: serialise on a fixed key
    PERFORM pg_advisory_xact_lock(7163021985501036142);
    FOR i IN 0 .. days - 1 LOOP
        d := first_day + i;
        part := format('events_p%s', to_char(d, 'YYYYMMDD'));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                part, (d::timestamp AT TIME ZONE 'UTC'), ((d + 1)::timestamp AT TIME ZONE 'UTC'));
            made := made + 1;
        END IF;
    END LOOP;
    RETURN made;
END $$;

-- Site overrides of the shipped policy file: key is a dotted path (ring.max_rings), value JSON.
CREATE TABLE policy_values (
    key        text PRIMARY KEY CHECK (key ~ '^[a-z_]+(\.[a-z0-9_]+)+$'),
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL
);
