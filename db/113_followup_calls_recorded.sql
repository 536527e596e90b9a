-- R-FOLLOWUP: a follow-up (回访) counts when the agent records its result on the desk (seed 004:
-- 每周需有效回访20位老会员,并将回访记录录入系统). One row per call; the order it followed up, if any.
ALTER TABLE followup_calls ADD COLUMN order_id bigint;
CREATE UNIQUE INDEX followup_calls_linkedid_key ON followup_calls (linkedid) WHERE linkedid IS NOT NULL;
CREATE INDEX followup_calls_order_idx ON followup_calls (order_id, called_at) WHERE order_id IS NOT NULL;
