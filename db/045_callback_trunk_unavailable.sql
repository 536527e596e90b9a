-- A callback whose customer leg could not be created because our carrier trunk was unreachable
-- (capture 18: DIALSTATUS=CHANUNAVAIL, Hangup Cause 3) is neither the customer's miss nor the agent's
-- failure: its own outcome, counted against nobody (cti/callbacks/outcomes.py TRUNK_SIDE, decision 0411).
ALTER TABLE callback_attempts DROP CONSTRAINT callback_attempts_outcome_check;
ALTER TABLE callback_attempts ADD CONSTRAINT callback_attempts_outcome_check
    CHECK (outcome IN ('reached', 'no_answer', 'busy', 'unreachable',
                       'agent_no_answer', 'agent_busy', 'agent_unavailable',
                       'agent_hangup', 'originate_error', 'not_sent', 'trunk_unavailable'));
