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
-- the tables that already record them: number_reveals (reveals; the wallboard's plays as
-- `recording:<id>`), recording_playbacks (the quality page's plays), report_downloads (report
-- exports) and data_exports (outbound contact exports, refused attempts included). One view, not a
-- fifth table.
CREATE VIEW audit_log AS
    SELECT at, username,
           CASE WHEN subject LIKE 'recording:%' THEN 'recording_play' ELSE 'number_reveal' END AS action,
           subject, reason AS detail
      FROM number_reveals
    UNION ALL
    SELECT at, username, 'recording_play', 'recording:' || recording_id,
           'quality review, role ' || role || CASE WHEN byte_range <> '' THEN ', ' || byte_range ELSE '' END
      FROM recording_playbacks
    UNION ALL
    SELECT at, username, 'export', report,
           CASE WHEN full_numbers THEN 'full numbers' ELSE 'masked' END
           || COALESCE(', ' || rows || ' rows', '') || ', role ' || role
      FROM report_downloads
    UNION ALL
    SELECT at, username, 'export', what,
           CASE WHEN allowed THEN '' ELSE 'REFUSED, ' END || rows || ' rows, role ' || role
      FROM data_exports;
