-- Hourly rollup of call_facts (issue 15): one row per UTC hour x queue x answering agent x DID, always
-- RECOMPUTED from call_facts for the hours a write touched (never incremented), so a re-run, a rebuild
-- or two processes writing the same call leave the same rows. '-' stands for "none" in the key.
CREATE TABLE facts_hourly (
    hour              timestamptz NOT NULL,
    queue             text NOT NULL,
    agent             text NOT NULL,
    did               text NOT NULL,
    calls             integer NOT NULL,
    offered           integer NOT NULL,          -- outcome <> 'unqueued'
    answered          integer NOT NULL,
    abandoned         integer NOT NULL,
    timeout           integer NOT NULL,
    within_two_rings  integer NOT NULL,          -- answered with rings_to_answer <= 2
    hold_s            numeric(14, 3) NOT NULL,   -- sum of the answered calls' queue wait
    talk_s            numeric(14, 3) NOT NULL,   -- sum of talk time (all calls)
    abandon_wait_s    numeric(14, 3) NOT NULL,   -- sum of the abandoned calls' wait
    PRIMARY KEY (hour, queue, agent, did)
);
