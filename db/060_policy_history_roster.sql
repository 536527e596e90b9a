-- The policy in force at any past moment (a violation is priced by the policy of its own time) and
-- the roster (who was on which shift, under which supervisor).

-- Every change to `policy_values` since this migration, written by a trigger so no writer can forget
-- it. value NULL = the override was removed (the shipped file's figure applies again).
-- The policy at time T = shipped file + for each key the latest row with effective_from <= T.
CREATE TABLE policy_value_history (
    id             bigserial PRIMARY KEY,
    key            text NOT NULL,
    value          jsonb,
    effective_from timestamptz NOT NULL,
    changed_by     text NOT NULL
);
CREATE INDEX policy_value_history_key_idx ON policy_value_history (key, effective_from);

-- Overrides that existed before the history began count as in force since the beginning of time.
INSERT INTO policy_value_history (key, value, effective_from, changed_by)
    SELECT key, value, '-infinity', updated_by FROM policy_values;

CREATE FUNCTION cti_policy_value_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO policy_value_history (key, value, effective_from, changed_by)
            VALUES (OLD.key, NULL, clock_timestamp(), OLD.updated_by);
        RETURN OLD;
    END IF;
    INSERT INTO policy_value_history (key, value, effective_from, changed_by)
        VALUES (NEW.key, NEW.value, NEW.updated_at, NEW.updated_by);
    RETURN NEW;
END $$;

CREATE TRIGGER policy_values_history AFTER INSERT OR UPDATE OR DELETE ON policy_values
    FOR EACH ROW EXECUTE FUNCTION cti_policy_value_history();

-- Roster (排班): one row per day, shift (a policy shift name), group. Without a row for a time, the
-- fines fall back to who was logged in (cti.fines.attendance).
CREATE TABLE roster (
    day         date NOT NULL,                    -- site-local date
    shift       text NOT NULL,                    -- policy shift name (morning, middle …)
    group_name  text NOT NULL DEFAULT 'default',
    supervisor  text,                             -- agents.id of the shift supervisor (值班主管)
    agents      text[] NOT NULL DEFAULT '{}',
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text NOT NULL,
    PRIMARY KEY (day, shift, group_name)
);
