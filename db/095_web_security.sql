-- Web security (issue 16): idle session expiry, login throttling shared by every process, and one
-- audit log a manager reads.

-- idle expiry: a session unused for web.session_idle_minutes is dead even before expires_at
-- (NULL: not seen since login, so created_at counts)
ALTER TABLE web_sessions ADD COLUMN last_seen_at timestamptz;

-- failed logins, per user name and per address: in the database so two processes share the count
CREATE TABLE web_login_failures (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL,
    username  text NOT NULL,                  -- as typed (may be no user at all)
    address   text NOT NULL
);
CREATE INDEX web_login_failures_user_idx ON web_login_failures (username, at);
CREATE INDEX web_login_failures_addr_idx ON web_login_failures (address, at);

-- what the audit page reads: every reveal of a full number, play of a recording and export, from
-- the tables that already record them (number_reveals holds reveals and recording plays as
-- `recording:<id>`; report_downloads holds exports). One view, not a fourth table.
CREATE VIEW audit_log AS
    SELECT at, username,
           CASE WHEN subject LIKE 'recording:%' THEN 'recording_play' ELSE 'number_reveal' END AS action,
           subject, reason AS detail
      FROM number_reveals
    UNION ALL
    SELECT at, username, 'export' AS action, report AS subject,
           CASE WHEN full_numbers THEN 'full numbers' ELSE 'masked' END
           || COALESCE(', ' || rows || ' rows', '') || ', role ' || role AS detail
      FROM report_downloads;
