-- Inbound routing data (R-FIRST-OWNER, R-REC): customers, their orders with the owning agent, and
-- one recording row per routed call, written by the FastAGI `route` handler.

CREATE TABLE customers (
    id         bigserial PRIMARY KEY,
    number     text NOT NULL UNIQUE CHECK (number ~ '^\+?[0-9]{3,20}$'),  -- full number; display masks it
    name       text,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- An order belongs to the agent who entered it first (首问负责制). A duplicate entry points at the
-- first one (duplicate_of); an add-on order points at the original (parent_order_id): routing follows
-- those links to the owner. Once every order is received (or cancelled) the customer is nobody's.
CREATE TABLE orders (
    id              bigserial PRIMARY KEY,
    customer_id     bigint NOT NULL REFERENCES customers(id),
    owner_agent     text REFERENCES agents(id),
    status          text NOT NULL DEFAULT 'new'
                    CHECK (status IN ('new', 'confirmed', 'shipped', 'received', 'cancelled', 'returned')),
    parent_order_id bigint REFERENCES orders(id),
    duplicate_of    bigint REFERENCES orders(id),
    product         text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (parent_order_id IS DISTINCT FROM id AND duplicate_of IS DISTINCT FROM id)
);

CREATE INDEX orders_customer_idx ON orders (customer_id, created_at);

-- R-REC: the file MixMonitor writes for a call, tied to the call by its Linkedid. The route handler
-- inserts the row with the path it hands to the dialplan (CTI_RECORD); the AMI side fills in
-- started_at / duration when MixMonitorStart and the hangup are seen.
CREATE TABLE recordings (
    id          bigserial PRIMARY KEY,
    linkedid    text NOT NULL UNIQUE,
    uniqueid    text,
    path        text NOT NULL,
    number      text,                            -- full caller number (masked on display)
    did         text,
    queue       text,
    preferred_agent text,
    created_at  timestamptz NOT NULL,
    started_at  timestamptz,
    ended_at    timestamptz,
    duration_s  numeric(10, 3)
);

CREATE INDEX recordings_created_idx ON recordings (created_at);
