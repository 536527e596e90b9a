-- How each call left the queue (see cti.facts.derive.CallFact.outcome): answered | abandoned |
-- timeout | unqueued, and when it left. R-MISSED counts abandoned + timeout while agents were logged in.
ALTER TABLE call_facts
    ADD COLUMN outcome text NOT NULL DEFAULT 'unqueued'
        CHECK (outcome IN ('answered', 'abandoned', 'timeout', 'unqueued')),
    ADD COLUMN left_queue_at timestamptz;
