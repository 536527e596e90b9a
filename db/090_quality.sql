-- Quality (issue 17): the customer's own rating after the call (seed 001 §51 客户评价满意度) and
-- recordings sampled and scored (seed 002 对客服电话录音进行定期抽查和评估).

-- One survey per call (the `survey` AGI script). score is 1..5 whatever the scale the policy asked
-- with (满意/一般/不满意 map to 5/3/1); NULL when the customer gave no usable key or left.
CREATE TABLE survey_results (
    id            bigserial PRIMARY KEY,
    linkedid      text NOT NULL UNIQUE,
    uniqueid      text,
    agent         text,                           -- the agent who left the call (MEMBERNAME / arg)
    queue         text,
    call_kind     text NOT NULL CHECK (call_kind IN ('inbound', 'callback')),
    scale         text NOT NULL CHECK (scale IN ('five', 'three')),
    keyed         text NOT NULL DEFAULT '',        -- what the customer pressed ('' none)
    score         smallint CHECK (score BETWEEN 1 AND 5),
    outcome       text NOT NULL CHECK (outcome IN ('rated', 'no_key', 'invalid', 'hung_up')),
    alarm         boolean NOT NULL DEFAULT false,  -- very dissatisfied: the supervisor is alerted
    recording_id  bigint,                          -- recordings.id when the row existed
    at            timestamptz NOT NULL
);
CREATE INDEX survey_results_agent_idx ON survey_results (agent, at);
CREATE INDEX survey_results_at_idx ON survey_results (at);

-- Score forms as data, versioned: a manager's edit is a new version; a score keeps its version.
CREATE TABLE qa_forms (
    name        text NOT NULL CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    version     integer NOT NULL CHECK (version >= 1),
    definition  jsonb NOT NULL,                    -- {title, sections: [{title, items: [...]}]}
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (name, version)
);

-- The calls chosen for review in a period: drawn by the plan (reproducible) or added by hand.
CREATE TABLE qa_samples (
    id            bigserial PRIMARY KEY,
    period        text NOT NULL CHECK (period IN ('week', 'month')),
    period_start  date NOT NULL,                   -- site-local first day (Monday / the 1st)
    linkedid      text NOT NULL,
    agent         text NOT NULL,
    call_kind     text NOT NULL CHECK (call_kind IN ('inbound', 'callback', 'outbound')),
    started_at    timestamptz NOT NULL,
    recording_id  bigint REFERENCES recordings(id),
    reason        text NOT NULL CHECK (reason IN ('drawn', 'callback', 'outbound', 'extra', 'manual')),
    plan_digest   text,                            -- the plan it was drawn with (NULL: by hand)
    added_by      text NOT NULL,
    added_at      timestamptz NOT NULL,
    UNIQUE (period, period_start, linkedid)
);
CREATE INDEX qa_samples_agent_idx ON qa_samples (agent, period_start);

-- A reviewer's score of a sampled call, with the form version it was scored with.
CREATE TABLE qa_scores (
    sample_id     bigint PRIMARY KEY REFERENCES qa_samples(id) ON DELETE CASCADE,
    form_name     text NOT NULL,
    form_version  integer NOT NULL,
    reviewer      text NOT NULL,
    answers       jsonb NOT NULL,                  -- item id -> points given
    score         numeric(5, 2) NOT NULL CHECK (score BETWEEN 0 AND 100),
    fatal         text,                            -- the fatal item that zeroed the call, if any
    comment       text NOT NULL DEFAULT '',
    scored_at     timestamptz NOT NULL,
    FOREIGN KEY (form_name, form_version) REFERENCES qa_forms (name, version)
);

-- Every play of a recording in the browser (who, which, which byte range): R-MASK's audit spirit.
CREATE TABLE recording_playbacks (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL,
    username      text NOT NULL,
    role          text NOT NULL,
    recording_id  bigint NOT NULL,
    linkedid      text NOT NULL,
    byte_range    text                             -- the Range header asked for ('' whole file)
);
CREATE INDEX recording_playbacks_rec_idx ON recording_playbacks (recording_id, at);
