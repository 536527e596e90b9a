-- Night captures taken by the degraded-mode AGI script while the CTI was down reach the events table
-- through the spool; cti.agi.degraded_import turns each into a callback exactly once. This table is
-- the "once": one row per imported call (Linkedid), written in the same transaction as the callback.
CREATE TABLE agi_degraded_imports (
    linkedid    text PRIMARY KEY,
    callback_id bigint REFERENCES callbacks(id),
    imported_at timestamptz NOT NULL DEFAULT now()
);
