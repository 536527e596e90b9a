-- Hourly rollup of call_facts (issue 15), read by the report pages: one row per UTC hour x queue x
-- answering agent x DID, always RECOMPUTED from call_facts for the hours a write touched (never
-- incremented), so a re-run, a rebuild or two processes writing the same call leave the same rows.
-- '-' stands for "none" in the key. Sums and counts, not averages, so any grouping of rows can be
-- averaged exactly; the two policy thresholds the counts used are kept on the row (a page whose rows
-- were counted with other thresholds reads call_facts instead).
CREATE TABLE facts_hourly (
    hour            timestamptz NOT NULL,
    queue           text NOT NULL,
    agent           text NOT NULL,
    did             text NOT NULL,
    calls           integer NOT NULL,
    offered         integer NOT NULL,          -- outcome <> 'unqueued'
    answered        integer NOT NULL,
    abandoned       integer NOT NULL,
    timeout         integer NOT NULL,
    abandon_wait_s  numeric(14, 3) NOT NULL,   -- sum over abandoned calls ...
    abandon_wait_n  integer NOT NULL,          -- ... that have a wait
    in_sl           integer NOT NULL,          -- answered with hold_s < sl_s (two rings)
    in_30           integer NOT NULL,          -- answered with time_to_answer_s <= in_30_s (R-30S)
    hold_s          numeric(14, 3) NOT NULL,   -- sum of the answered calls' queue wait (ASA) ...
    hold_n          integer NOT NULL,
    answered_talk_s numeric(14, 3) NOT NULL,   -- sum of the answered calls' talk time (AHT) ...
    answered_talk_n integer NOT NULL,
    talk_s          numeric(14, 3) NOT NULL,   -- sum of talk time, all calls
    sl_s            numeric(8, 3) NOT NULL,    -- the thresholds these counts used
    in_30_s         numeric(8, 3) NOT NULL,
    PRIMARY KEY (hour, queue, agent, did)
);

-- The history already in call_facts, counted with the shipped policy's thresholds (two 5-s rings,
-- 30 s). A site whose policy differs reads call_facts for these hours (the row's thresholds do not
-- match) until `cti facts rebuild --since ...` recounts them.
INSERT INTO facts_hourly
SELECT date_trunc('hour', started_at, 'UTC'), coalesce(queue, '-'), coalesce(answered_by, '-'),
       coalesce(did, '-'), count(*), count(*) FILTER (WHERE outcome <> 'unqueued'),
       count(*) FILTER (WHERE outcome = 'answered'), count(*) FILTER (WHERE outcome = 'abandoned'),
       count(*) FILTER (WHERE outcome = 'timeout'),
       coalesce(sum(abandon_wait_s) FILTER (WHERE outcome = 'abandoned'), 0),
       count(abandon_wait_s) FILTER (WHERE outcome = 'abandoned'),
       count(*) FILTER (WHERE outcome = 'answered' AND hold_s < 10),
       count(*) FILTER (WHERE outcome = 'answered' AND time_to_answer_s <= 30),
       coalesce(sum(hold_s) FILTER (WHERE outcome = 'answered'), 0),
       count(hold_s) FILTER (WHERE outcome = 'answered'),
       coalesce(sum(talk_s) FILTER (WHERE outcome = 'answered'), 0),
       count(talk_s) FILTER (WHERE outcome = 'answered'),
       coalesce(sum(talk_s), 0), 10, 30
FROM call_facts GROUP BY 1, 2, 3, 4;
