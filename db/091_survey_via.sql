-- Issue 17, decision 0900: how the customer reached the survey. `hangup`: the agent hung up first;
-- `key`: the agent pressed the transfer-to-survey key (*0, features.conf), which a site may treat
-- differently from hanging up on the customer (R-HANGUP-LAST).
ALTER TABLE survey_results
    ADD COLUMN via text NOT NULL DEFAULT 'hangup' CHECK (via IN ('hangup', 'key'));
