-- Web users, their sessions, and the audit of every reveal of a full customer number (R-MASK).
CREATE TABLE web_users (
    username       text PRIMARY KEY CHECK (username ~ '^[A-Za-z0-9_.-]{1,64}$'),
    display_name   text NOT NULL DEFAULT '',
    password_hash  text NOT NULL,                -- scrypt$n$r$p$salt_b64$hash_b64
    role           text NOT NULL CHECK (role IN ('agent', 'supervisor', 'manager', 'admin')),
    agent_id       text REFERENCES agents(id),
    can_reveal_numbers boolean NOT NULL DEFAULT false,
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE web_sessions (
    token_sha256 bytea PRIMARY KEY,             -- the cookie holds the token; we keep only its hash
    username     text NOT NULL REFERENCES web_users(username) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX web_sessions_expiry_idx ON web_sessions (expires_at);

CREATE TABLE number_reveals (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL,
    username   text NOT NULL REFERENCES web_users(username),
    subject    text NOT NULL,                   -- what was revealed: uniqueid / callback id / linkedid
    reason     text NOT NULL
);
