-- Outbound campaigns (R-PACE, R-DNC, R-CAPS, R-DATA): campaigns, contacts and lists, the DNC list by
-- category, the dial log, contact assignments and the pre-dial claim. See
-- docs/decisions/0500-outbound-claim-and-cap-counting.md for why the claim and the cap summary look
-- the way they do.

-- A campaign. Every insert/update is also an event (trigger below), whoever makes it.
CREATE TABLE campaigns (
    id               bigserial PRIMARY KEY,
    name             text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    product          text NOT NULL CHECK (length(product) BETWEEN 1 AND 100),
    queue            text NOT NULL,               -- the agent group that works it
    did              text NOT NULL CHECK (did ~ '^\+?[0-9]{3,20}$'),  -- presented when no earlier DID (R-OUT-CID)
    mode             text NOT NULL CHECK (mode IN ('preview', 'progressive', 'predictive')),
    status           text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'running', 'paused', 'stopped')),
    max_attempts     integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    retry_backoff_s  integer NOT NULL DEFAULT 3600 CHECK (retry_backoff_s >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    updated_by       text NOT NULL DEFAULT 'system'
);

-- Call windows per customer segment, in the site's local time (end exclusive). A contact whose
-- segment has no row falls back to the campaign's 'default' rows; no row at all: not callable.
CREATE TABLE campaign_windows (
    campaign_id bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    segment     text   NOT NULL,
    start_local time   NOT NULL,
    end_local   time   NOT NULL CHECK (end_local > start_local),
    PRIMARY KEY (campaign_id, segment, start_local)
);

CREATE FUNCTION outbound_campaign_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM cti_ensure_event_partitions((now() AT TIME ZONE 'UTC')::date, 1);
    INSERT INTO events (ts, key, source, type, payload)
    VALUES (now(), format('campaign:%s:%s', NEW.id, nextval('events_seq')), 'cti',
            CASE WHEN TG_OP = 'INSERT' THEN 'CampaignCreated' ELSE 'CampaignChanged' END,
            jsonb_build_object('campaign', to_jsonb(NEW),
                               'old_status', CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END));
    RETURN NEW;
END $$;
CREATE TRIGGER campaigns_event AFTER INSERT OR UPDATE ON campaigns
    FOR EACH ROW EXECUTE FUNCTION outbound_campaign_event();

-- A customer is a number: caps and DNC are per number, whichever list or campaign brought it.
CREATE TABLE contacts (
    id          bigserial PRIMARY KEY,
    number      text NOT NULL UNIQUE CHECK (number ~ '^\+?[0-9]{5,20}$'),  -- E.164 (+8613812345678)
    name        text,
    segment     text NOT NULL DEFAULT 'default',
    -- Cap summary, maintained in the claim transaction (see the decision note): no dial before it.
    quiet_until timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE contact_lists (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL
);

-- One row per imported file; the same file (sha256) imported into the same list again adds nothing.
CREATE TABLE contact_imports (
    id          bigserial PRIMARY KEY,
    list_id     bigint NOT NULL REFERENCES contact_lists (id),
    file_name   text NOT NULL,
    sha256      text NOT NULL,
    rows_total  integer NOT NULL DEFAULT 0,
    rows_added  integer NOT NULL DEFAULT 0,
    rows_bad    integer NOT NULL DEFAULT 0,
    imported_at timestamptz NOT NULL DEFAULT now(),
    imported_by text NOT NULL,
    complete    boolean NOT NULL DEFAULT false   -- a file stopped midway (bad encoding) may be retried
);
CREATE UNIQUE INDEX contact_imports_once_idx ON contact_imports (list_id, sha256) WHERE complete;

CREATE TABLE contact_import_errors (
    import_id bigint  NOT NULL REFERENCES contact_imports (id),
    row_no    integer NOT NULL,
    reason    text    NOT NULL,
    PRIMARY KEY (import_id, row_no)
);

CREATE TABLE list_members (
    list_id    bigint NOT NULL REFERENCES contact_lists (id),
    contact_id bigint NOT NULL REFERENCES contacts (id),
    PRIMARY KEY (list_id, contact_id)
);

-- Which contacts a campaign works, and its own per-contact attempt bookkeeping (campaign limits).
CREATE TABLE campaign_contacts (
    campaign_id     bigint  NOT NULL REFERENCES campaigns (id),
    contact_id      bigint  NOT NULL REFERENCES contacts (id),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT '-infinity',
    status          text    NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done')),
    PRIMARY KEY (campaign_id, contact_id)
);
CREATE INDEX campaign_contacts_due_idx ON campaign_contacts (campaign_id, next_attempt_at, contact_id)
    WHERE status = 'open';

-- R-DNC by category. Never deleted: removal sets removed_at, so the audit sees the list as it stood.
CREATE TABLE dnc (
    id         bigserial PRIMARY KEY,
    number     text NOT NULL CHECK (number ~ '^\+?[0-9]{3,20}$'),
    category   text NOT NULL CHECK (category IN ('malicious', 'do_not_disturb', 'complaint',
                                                 'refused_all', 'public_phone', 'special')),
    reason     text,
    added_at   timestamptz NOT NULL DEFAULT now(),
    added_by   text NOT NULL,
    removed_at timestamptz,
    removed_by text
);
CREATE UNIQUE INDEX dnc_active_idx ON dnc (number, category) WHERE removed_at IS NULL;
CREATE INDEX dnc_number_idx ON dnc (number);

-- The rule figures a dial was checked against (policy caps, windows, time zone), stored once per
-- distinct set and referenced by each dial: the audit judges a dial by the rules of its day.
CREATE TABLE outbound_rule_sets (
    id   bigserial PRIMARY KEY,
    hash text  NOT NULL UNIQUE,
    body jsonb NOT NULL
);

-- The dial log: one row per Originate, written in the claim transaction BEFORE the Originate.
CREATE TABLE dials (
    id           bigserial PRIMARY KEY,
    campaign_id  bigint NOT NULL REFERENCES campaigns (id),
    contact_id   bigint NOT NULL REFERENCES contacts (id),
    number       text   NOT NULL,
    product      text   NOT NULL,
    segment      text   NOT NULL,
    agent        text,                                 -- agent claimed with the dial (progressive/preview)
    connected_agent text,                              -- agent the customer was connected to
    did          text   NOT NULL,                      -- presented caller ID (R-OUT-CID)
    rule_set_id  bigint NOT NULL REFERENCES outbound_rule_sets (id),
    claimed_by   text   NOT NULL,                      -- CTI process
    channel_id   text   NOT NULL UNIQUE,               -- Originate ChannelId cti-ob-<id>
    dialed_at    timestamptz NOT NULL,
    answered_at  timestamptz,                          -- customer answered
    connected_at timestamptz,                          -- bridged to an agent
    ended_at     timestamptz,
    outcome      text CHECK (outcome IN ('answered', 'abandoned', 'busy', 'no_answer', 'congestion',
                                         'failed', 'originate_error')),
    disposition  text CHECK (disposition IN ('sale', 'refusal', 'callback', 'wrong_number',
                                             'never_call', 'no_decision')),
    callback_at  timestamptz,
    disposition_by text,
    talk_s       integer
);
CREATE INDEX dials_number_idx ON dials (number, dialed_at);
CREATE INDEX dials_campaign_idx ON dials (campaign_id, dialed_at);
CREATE INDEX dials_dialed_at_idx ON dials (dialed_at);

-- Per number and product: last dial and refusals (the same-product gap and the 3-refusal end).
CREATE TABLE contact_products (
    number       text NOT NULL,
    product      text NOT NULL,
    last_dial_at timestamptz,
    refusals     integer NOT NULL DEFAULT 0,
    PRIMARY KEY (number, product)
);

-- The pre-dial claim: one live row per number and per agent. A second campaign or process that
-- tries to claim the same number (or agent) hits the primary key / unique index and backs off.
CREATE TABLE dial_claims (
    number     text PRIMARY KEY,
    agent      text UNIQUE,            -- NULL for predictive dials (the queue picks the agent)
    dial_id    bigint NOT NULL REFERENCES dials (id),
    campaign_id bigint NOT NULL,
    claimed_by text NOT NULL,
    claimed_at timestamptz NOT NULL
);

-- R-DATA: contacts assigned to an agent or a group; recalled after at most N months (policy).
CREATE TABLE contact_assignments (
    id          bigserial PRIMARY KEY,
    contact_id  bigint NOT NULL REFERENCES contacts (id),
    agent       text,
    group_name  text,
    assigned_by text NOT NULL,
    assigned_at timestamptz NOT NULL,
    recall_at   timestamptz NOT NULL,
    recalled_at timestamptz,
    CHECK ((agent IS NULL) <> (group_name IS NULL)),
    CHECK (recall_at > assigned_at)
);
CREATE UNIQUE INDEX contact_assignments_live_idx ON contact_assignments (contact_id) WHERE recalled_at IS NULL;
CREATE INDEX contact_assignments_recall_idx ON contact_assignments (recall_at) WHERE recalled_at IS NULL;

-- Every export of customer data (a supervisor/manager right) is logged, refused ones too.
CREATE TABLE data_exports (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    username    text NOT NULL,
    role        text NOT NULL,
    what        text NOT NULL,
    rows        integer NOT NULL DEFAULT 0,
    allowed     boolean NOT NULL
);
